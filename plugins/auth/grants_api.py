"""Grants over REST, in the shapes of MLflow basic-auth's per-user permission
API, so that ``AuthServiceClient.grant_user_permission`` / ``revoke_user_permission``
/ ``get_user_permission`` work unchanged against this server:

- ``POST /api/3.0/mlflow/users/permissions/grant``
  ``{"username", "resource_type", "resource_id", "permission"}`` -> ``{}``
- ``POST /api/3.0/mlflow/users/permissions/revoke``
  ``{"username", "resource_type", "resource_id"}`` -> ``{}``
- ``GET /api/3.0/mlflow/users/permissions/get?username=&resource_type=&resource_id=``
  -> ``{"allowed", "permission"}`` (the effective level, as a request would see it)
- ``GET /api/3.0/mlflow/users/permissions/list[?username=][&resource_type=&resource_id=]``
  -> ``{"permissions": [...]}`` (Hokusai's rows; basic-auth's roles do not exist here)

``resource_type`` is ``experiment`` or ``registered_model``. Granting and
revoking need the ``write`` scope and MANAGE on the resource (its owner, a
MANAGE grant, or an ``admin`` key). Each is in the audit trail, as every write is.
"""

from __future__ import annotations

import logging

import flask

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.db import model_rows
from mlflow_hokusai.errors import BadRequest, NotFound, PermissionDenied
from mlflow_hokusai.pipeline import current_context, request_context
from mlflow_hokusai.plugins.auth.authorize import RANK, require
from mlflow_hokusai.plugins.auth.grants import GRANTABLE, RESOURCE_TYPES
from mlflow_hokusai.plugins.auth.resources import MANAGE
from mlflow_hokusai.plugins.auth.scopes import ADMIN
from mlflow_hokusai.web import json_object

blueprint = flask.Blueprint("hokusai_permissions", __name__)
_logger = logging.getLogger(__name__)
_PATHS = ("/api/3.0/mlflow/users/permissions", "/ajax-api/3.0/mlflow/users/permissions")


def _route(suffix: str, methods: list[str]):
    def decorate(view):
        for base in _PATHS:
            blueprint.add_url_rule(f"{base}/{suffix}", endpoint=f"{view.__name__}_{base[1:4]}",
                                   view_func=view, methods=methods)
        return view
    return decorate


def _hokusai():
    return flask.current_app.extensions["hokusai"]


def _text(values: dict, name: str, limit: int) -> str:
    value = values.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"'{name}' must be a non-empty string of at most {limit} characters")
    return value


def _resource(values: dict) -> tuple[str, str]:
    resource_type = values.get("resource_type")
    if resource_type not in RESOURCE_TYPES:
        raise BadRequest(f"'resource_type' must be one of {', '.join(RESOURCE_TYPES)}")
    return resource_type, _text(values, "resource_id", 256)


def _must_exist(resource_type: str, resource_id: str) -> None:
    """A grant on a name nobody holds yet would pass to whoever creates it."""
    from mlflow.exceptions import MlflowException

    try:
        if resource_type == "experiment":
            mlflow_compat.server_tracking_store().get_experiment(resource_id)
        else:
            mlflow_compat.server_registry_store().get_registered_model(resource_id)
    except MlflowException:
        raise NotFound(f"No {resource_type} '{resource_id}'") from None


def _workspace() -> str:
    context = current_context.get()
    return context.notes.get("workspace", "") if context else ""


def _caller():
    return request_context().principal


@_route("grant", ["POST"])
def grant():
    body = json_object(allowed={"username", "resource_type", "resource_id", "permission"},
                       required={"username", "resource_type", "resource_id", "permission"})
    username = _text(body, "username", 255)
    resource_type, resource_id = _resource(body)
    permission = body["permission"]
    if permission not in GRANTABLE:
        raise BadRequest(f"'permission' must be one of {', '.join(GRANTABLE)}")
    _must_exist(resource_type, resource_id)
    require(resource_type, resource_id, MANAGE)
    _hokusai().authorizer.grants.grant(_workspace(), resource_type, resource_id, username,
                                       permission, _caller().username)
    _logger.info("%s granted %s on %s %s to %s", _caller().label, permission, resource_type,
                 resource_id, username)
    return {}


@_route("revoke", ["POST"])
def revoke():
    body = json_object(allowed={"username", "resource_type", "resource_id"},
                       required={"username", "resource_type", "resource_id"})
    username = _text(body, "username", 255)
    resource_type, resource_id = _resource(body)
    require(resource_type, resource_id, MANAGE)
    if not _hokusai().authorizer.grants.revoke(_workspace(), resource_type, resource_id,
                                               username):
        raise NotFound(f"{username} holds no grant on {resource_type} '{resource_id}'")
    _logger.info("%s revoked %s's grant on %s %s", _caller().label, username, resource_type,
                 resource_id)
    return {}


@_route("get", ["GET"])
def get():
    args = flask.request.args
    username = _text(args, "username", 255)
    resource_type, resource_id = _resource(args)
    caller = _caller()
    if username != caller.username and ADMIN not in caller.scopes:
        require(resource_type, resource_id, MANAGE)
    level = _hokusai().authorizer.level(username, resource_type, resource_id, _workspace())
    return {"allowed": RANK[level] >= RANK["READ"], "permission": level}


@_route("list", ["GET"])
def list_grants():
    args = flask.request.args
    unknown = sorted(set(args) - {"username", "resource_type", "resource_id"})
    if unknown:
        raise BadRequest(f"Unknown parameter(s): {', '.join(unknown)}")
    caller = _caller()
    username = args.get("username")
    resource = _resource(args) if "resource_type" in args or "resource_id" in args else None
    if ADMIN not in caller.scopes:
        if resource is not None:
            require(*resource, MANAGE)  # a resource's manager sees who holds what on it
        elif username is None or username == caller.username:
            username = caller.username
        else:
            raise PermissionDenied(ADMIN)
    rows = _hokusai().authorizer.grants.list(
        _workspace(), principal=username, resource_type=resource[0] if resource else None,
        resource_id=resource[1] if resource else None)
    return {"permissions": [{"username": row["principal"], "resource_type": row["resource_type"],
                             "resource_id": row["resource_id"], "permission": row["permission"],
                             "granted_by": row["granted_by"], "granted_at": row["granted_at"],
                             "workspace": row["workspace"] or None} for row in rows]}


def model_follower(hokusai):
    """A receiver of ``signals.model_changed``: a deleted registered model's
    grants go with it, a renamed one's follow it; a later model of the same name
    starts clean."""
    grants = hokusai.authorizer.grants

    def follow_model(sender, session, name: str, new_name: str | None) -> None:
        workspace = _workspace()
        model_rows.alongside(
            hokusai, session,
            lambda connection: grants.rename(connection, workspace, "registered_model", name,
                                             new_name),
            f"Grants of model {name!r}", then=grants.forget_all)

    return follow_model
