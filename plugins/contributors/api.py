"""``/api/contributors``: proving Ethereum addresses (SIWE, EIP-4361).

- ``POST /api/contributors/challenge`` ``{"address"}`` -> the message to sign
- ``POST /api/contributors/link`` ``{"message", "signature"}`` -> the link
- ``GET /api/contributors/me`` -> the caller's principal and its linked addresses
- ``DELETE /api/contributors/links/<principal>/<address>`` (admin) -> unlinks

Challenge and link need ``write`` (the default for POST), ``me`` needs ``read``,
unlinking ``admin`` (plugins/contributors/__init__.py adds the rule).
"""

from __future__ import annotations

import logging

import flask

from mlflow_hokusai import signals
from mlflow_hokusai.errors import BadRequest, Unsupported
from mlflow_hokusai.pipeline import required_principal
from mlflow_hokusai.plugins.store.ethereum import InvalidAddress, normalize_address
from mlflow_hokusai.web import json_object

blueprint = flask.Blueprint("hokusai_contributors", __name__, url_prefix="/api/contributors")
_logger = logging.getLogger(__name__)


def _links():
    links = flask.current_app.extensions["hokusai"].contributor_links
    if links.public_url is None:
        raise Unsupported("Linking addresses needs HOKUSAI_PUBLIC_URL (the URL people reach "
                          "this server at): the signed message must name it")
    return links


def _address(value) -> str:
    try:
        return normalize_address(value)
    except InvalidAddress as error:
        raise BadRequest(str(error)) from None


def _text(body: dict, name: str, limit: int) -> str:
    value = body[name]
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadRequest(f"'{name}' must be a non-empty string of at most {limit} characters")
    return value


def _recorded(event: str, principal: str, address: str, **proof) -> None:
    signals.contribution_recorded.send(
        "contributors", event=event, token_id=None, model_name=None, version=None,
        principal=required_principal().username,
        data={"principal": principal, "address": address, **proof})


@blueprint.post("/challenge")
def challenge():
    body = json_object(allowed={"address"}, required={"address"})
    return _links().challenge(required_principal().username, _address(body["address"])), 201


@blueprint.post("/link")
def link():
    body = json_object(allowed={"message", "signature"}, required={"message", "signature"})
    principal = required_principal()
    message, signature = _text(body, "message", 2000), _text(body, "signature", 200)
    linked = _links().link(principal.username, message, signature)
    _logger.info("%s proved address %s", principal.label, linked["address"])
    # The signed message travels with the event: the ledger alone can prove the link.
    _recorded("contributor_linked", principal.username, linked["address"], message=message,
              signature=signature)
    return linked, 201


@blueprint.get("/me")
def me():
    principal = required_principal()
    links = flask.current_app.extensions["hokusai"].contributor_links
    return {"principal": principal.username, "links": links.of(principal.username)}


@blueprint.delete("/links/<principal>/<address>")
def unlink(principal: str, address: str):
    address = _address(address)
    flask.current_app.extensions["hokusai"].contributor_links.unlink(principal, address)
    _logger.info("%s unlinked %s from %s", required_principal().label, address, principal)
    _recorded("contributor_unlinked", principal, address)
    return {"principal": principal, "address": address, "unlinked": True}
