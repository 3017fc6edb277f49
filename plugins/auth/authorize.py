"""The per-resource permission check: reads the route the request resolved to
(``context.route.access``), finds the resource in the request exactly where
the view will read it, and compares the principal's level there with the
level the route needs.

The level: MANAGE for the owner; else the principal's grant, if any; else
``HOKUSAI_DEFAULT_PERMISSION``. ``admin`` keys pass; the key's scope was
already checked by the gate and stays the ceiling (a ``read`` key never
writes, whatever its level). A principal that may not even READ gets MLflow's
"does not exist" answer (404), so that a refusal does not reveal the resource.
Where the request names its resources: plugins.auth.locate.

Flask routes are checked in a ``before_request`` hook (where the JSON body is
parsed once, as the view will see it); FastAPI-native routes (artifact
GET/PUT under uvicorn) by a pipeline step, from their path.
"""

from __future__ import annotations

import logging

from mlflow_hokusai.errors import (
    BadRequest,
    ResourceHidden,
    ResourcePermissionDenied,
    RouteNotClassified,
)
from mlflow_hokusai.pipeline import LookupNeeded, RequestContext
from mlflow_hokusai.plugins.auth.grants import Grants
from mlflow_hokusai.plugins.auth.locate import accesses, flask_values, locate_all, native_values
from mlflow_hokusai.plugins.auth.ownership import MISSING, Ownership
from mlflow_hokusai.plugins.auth.resources import CREATE, JOBS, LEVELS, MANAGE, READ
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_logger = logging.getLogger(__name__)
RANK = {level: rank for rank, level in enumerate(LEVELS)}
JOB_SEARCH = JOBS + "search"


class Authorizer:
    def __init__(self, settings, grants: Grants, ownership: Ownership):
        self.default = settings.default_permission
        self.grants = grants
        self.ownership = ownership

    def level(self, username: str, resource_type: str, resource_id: str,
              workspace: str = "") -> str:
        owner = self.ownership.owner(resource_type, resource_id, workspace)
        if owner is MISSING or owner == username:
            return MANAGE
        granted = self.grants.permission(workspace, resource_type, resource_id, username)
        return granted or self.default

    def cached_level(self, username: str, resource_type: str, resource_id: str,
                     workspace: str = "") -> str | None:
        """``level`` from what this worker read within the TTL, or None when that
        does not decide it (then the caller asks the database)."""
        found, owner = self.ownership.cached_owner(resource_type, resource_id)
        if not found:
            return None
        if owner == username:
            return MANAGE
        found, granted = self.grants.cached_permission(workspace, resource_type, resource_id,
                                                       username)
        if not found:
            return None
        return granted or self.default

    def require(self, context: RequestContext, kind: str, ident: str, needed: str) -> None:
        """Refuse unless the principal holds ``needed`` on the resource; for views
        that check resources a route's table entry cannot name (batches, ...).
        A resource under several experiments (a dataset) needs it on each."""
        principal = context.principal
        if principal is None or ADMIN in principal.scopes or needed == CREATE:
            return
        roots = self.ownership.roots(kind, ident)
        if roots is None:
            return  # no such resource: MLflow answers that itself
        for root in roots:
            self._require_root(context, root, kind, ident, needed)

    def _require_root(self, context, root: tuple[str, str], kind: str, ident: str,
                      needed: str) -> None:
        principal = context.principal
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
        for each in accesses(access):
            idents = locate_all(each, values)
            if idents is None and each is not access:
                continue  # a further resource the request does not name: not touched
            if idents is None:
                raise BadRequest(f"Missing value for '{each.locator.removeprefix('header:')}'")
            for ident in idents:
                self.require(context, each.kind, ident, each.level)

    def native_step(self, context: RequestContext, allow_io: bool) -> None:
        """Pipeline step for FastAPI-native routes (Flask ones: ``flask_hook``)."""
        route = context.route
        if context.public or route is None or not route.native:
            return
        if (route.method, route.template) == ("POST", JOB_SEARCH):
            self._filter_job_search(context)
        if route.access is None:
            return
        if not allow_io:
            raise LookupNeeded
        self.check(context, native_values(context, route.access))

    def _filter_job_search(self, context: RequestContext) -> None:
        """Jobs are not paged: the answer is filtered to the jobs the principal
        may read, its own (MLflow records the submitter as ``creator``), or
        every job when the default permission reads."""
        principal = context.principal
        if principal is None or ADMIN in principal.scopes or RANK[self.default] >= RANK[READ]:
            return
        context.notes["answer_filter"] = lambda answer: {**answer, "jobs": [
            job for job in answer.get("jobs", []) if job.get("creator") == principal.username]}

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
