"""The per-resource permission check: reads the route the request resolved to
(``context.route.access``), finds the resource in the request exactly where
the view will read it, and compares the principal's level there with the
level the route needs.

The level: MANAGE for the owner; else the principal's grant, if any; else
``HOKUSAI_DEFAULT_PERMISSION``. ``admin`` keys pass; the key's scope was
already checked by the gate and stays the ceiling (a ``read`` key never
writes, whatever its level). A principal that may not even READ gets MLflow's
"does not exist" answer (404), so that a refusal does not reveal the resource.

Flask routes are checked in a ``before_request`` hook (where the JSON body is
parsed once, as the view will see it); FastAPI-native routes (artifact
GET/PUT under uvicorn) by a pipeline step, from their path.
"""

from __future__ import annotations

import json
import logging

from mlflow_hokusai.errors import (BadRequest, ResourceHidden, ResourcePermissionDenied,
                                   RouteNotClassified)
from mlflow_hokusai.pipeline import LookupNeeded, RequestContext
from mlflow_hokusai.plugins.auth.grants import Grants
from mlflow_hokusai.plugins.auth.ownership import MISSING, Ownership
from mlflow_hokusai.plugins.auth.resources import CREATE, LEVELS, MANAGE, READ
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_logger = logging.getLogger(__name__)
RANK = {level: rank for rank, level in enumerate(LEVELS)}
# Where each kind's id may be, in the order MLflow's handlers read them.
_FIELDS = {"run": ("run_id", "run_uuid")}
_OPTIONAL = {"artifact"}  # no path: the artifact root itself


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def locate(access, values: dict) -> str | None:
    """The resource id a request names. Every place a view might read it from is
    looked at (snake_case and the camelCase aliases protobuf's JSON parser takes,
    ``run_id`` and ``run_uuid``), and they must agree: MLflow's views differ in
    which one wins (``upload-artifact`` reads ``run_uuid``, GET handlers read
    only snake_case query names), so a request naming two would be judged on
    one resource and served on another."""
    found = {str(value) for field in _FIELDS.get(access.kind, (access.locator,))
             for name in (field, _camel(field))
             for value in [values.get(name)]
             if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value)}
    if len(found) > 1:
        raise BadRequest(f"The request names more than one {access.kind}; name it once")
    if found:
        return found.pop()
    if access.kind in _OPTIONAL:
        return ""
    return None


def flask_values(route) -> dict:
    """What the view reads: MLflow's protobuf handlers read the query of a GET
    and otherwise only the JSON body (however it is labelled); other views read
    the query. Path parameters always. An artifact route's body is the upload
    itself: never read here."""
    import flask

    request = flask.request
    values: dict = {}
    if route.key[:1].isupper() and route.access.kind != "artifact" and \
            not (request.method == "GET" and request.args):
        body = request.get_json(force=True, silent=True)
        if isinstance(body, str):  # older clients double-encode, MLflow decodes twice
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        values = body if isinstance(body, dict) else {}
    else:
        values = request.args.to_dict()
    return {**values, **(request.view_args or {})}


class Authorizer:
    def __init__(self, settings, grants: Grants, ownership: Ownership):
        self.default = settings.default_permission
        self.grants = grants
        self.ownership = ownership

    def level(self, username: str, resource_type: str, resource_id: str,
              workspace: str = "") -> str:
        owner = self.ownership.owner(resource_type, resource_id)
        if owner is MISSING or owner == username:
            return MANAGE
        granted = self.grants.permission(workspace, resource_type, resource_id, username)
        return granted or self.default

    def require(self, context: RequestContext, kind: str, ident: str, needed: str) -> None:
        """Refuse unless the principal holds ``needed`` on the resource; for views
        that check resources a route's table entry cannot name (batches, ...)."""
        principal = context.principal
        if principal is None or ADMIN in principal.scopes or needed == CREATE:
            return
        root = self.ownership.root(kind, ident)
        if root is None:
            return  # no such resource: MLflow answers that itself
        held = self.level(principal.username, *root, workspace=context.notes.get("workspace", ""))
        if RANK[held] >= RANK[needed]:
            return
        context.notes["audit"] = True  # denials are audited, reads included
        _logger.info("Refused %s %s to %s: %s on %s %s, has %s", context.request.method,
                     context.route.template if context.route else "", principal.label,
                     needed, root[0], root[1], held)
        if RANK[held] < RANK[READ]:
            raise ResourceHidden(kind, ident)
        raise ResourcePermissionDenied(root[0], root[1], needed, held)

    def check(self, context: RequestContext, values: dict) -> None:
        access = context.route.access if context.route else None
        if access is None or access.level == CREATE or context.principal is None:
            return
        ident = locate(access, values)
        if ident is None:
            raise BadRequest(f"Missing value for '{access.locator}'")
        self.require(context, access.kind, ident, access.level)

    def native_step(self, context: RequestContext, allow_io: bool) -> None:
        """Pipeline step for FastAPI-native routes (Flask ones: ``flask_hook``)."""
        route = context.route
        if context.public or route is None or not route.native or route.access is None:
            return
        if not allow_io:
            raise LookupNeeded
        self.check(context, context.route_params)

    def flask_hook(self) -> None:
        import flask

        from mlflow_hokusai.pipeline import current_context

        context = current_context.get()
        if context is None or context.route is None or context.route.native or \
                context.route.access is None or context.principal is None:
            return
        rule = flask.request.url_rule
        if rule is None or rule.rule != context.route.template:
            # Never judge one route and serve another.
            _logger.error("Route table resolved %s but Flask routed %s", context.route.template,
                          rule.rule if rule else None)
            raise RouteNotClassified(rule.rule if rule else context.request.path)
        self.check(context, flask_values(context.route))


def require(kind: str, ident: str, needed: str) -> None:
    """For views that name a resource the route table cannot (in a batch, or a
    registration that may create the model): the same check, same refusals."""
    import flask

    from mlflow_hokusai.pipeline import current_context

    context = current_context.get()
    authorizer = flask.current_app.extensions["hokusai"].authorizer
    if context is not None and authorizer is not None:
        authorizer.require(context, kind, ident, needed)
