"""``/api/keys``: key management over REST for ``admin`` keys (the gate's rule
table requires the scope; these views only do the work)."""

from __future__ import annotations

import logging

import flask

from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth.keystore import DEFAULT_SCOPES, KeyStore
from mlflow_hokusai.web import json_object

blueprint = flask.Blueprint("hokusai_keys", __name__, url_prefix="/api/keys")
_logger = logging.getLogger(__name__)


def _store() -> KeyStore:
    return flask.current_app.extensions["hokusai"].keystore


def _actor() -> str:
    principal = current_principal()
    return principal.label if principal else "unknown"


@blueprint.get("")
def list_keys():
    return {"keys": [key.to_dict() for key in _store().list()]}


@blueprint.post("")
def create_key():
    body = json_object(allowed={"name", "owner", "scopes", "tier", "rate_limit",
                                "expires_in_days", "workspaces"}, required={"name"})
    key, plaintext = _store().create(
        body["name"], owner=body.get("owner"), scopes=body.get("scopes", DEFAULT_SCOPES),
        tier=body.get("tier"), rate_limit=body.get("rate_limit"),
        expires_in_days=body.get("expires_in_days"), workspaces=body.get("workspaces"))
    _logger.info("API key %s (%s) created by %s", key.id, key.prefix, _actor())
    return {**key.to_dict(), "key": plaintext}, 201


@blueprint.delete("/<key_id>")
def revoke_key(key_id: str):
    key = _store().revoke(key_id)
    _logger.info("API key %s (%s) revoked by %s", key.id, key.prefix, _actor())
    return key.to_dict()


@blueprint.post("/<key_id>/rotate")
def rotate_key(key_id: str):
    body = json_object(allowed={"grace_period_hours"})
    key, plaintext = _store().rotate(key_id, grace_period_hours=body.get("grace_period_hours", 0))
    _logger.info("API key %s rotated to %s (%s) by %s", key_id, key.id, key.prefix, _actor())
    return {**key.to_dict(), "key": plaintext}, 201
