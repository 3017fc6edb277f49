"""The auth plugin's part of the route table: each route's scope, whether it
is public, audited and classified, and what resource it touches."""

from __future__ import annotations

from mlflow_hokusai.plugins.auth import permissions, resources
from mlflow_hokusai.plugins.auth.scopes import READ
from mlflow_hokusai.routes import UNMATCHED, Route


def annotate(table, method: str, template: str, key: str, native: bool) -> Route:
    """``table``: the app's route table, with the rules, public paths and
    resources its plugins declared."""
    # An unmatched request's key is its path: judged as written, as before routing.
    judged = key if template == UNMATCHED else template
    scope = permissions.required_scope(method, judged, table.rules)
    public = method in permissions.SAFE_METHODS and \
        (template in permissions.PUBLIC_PATHS or template in table.public_paths)
    return Route(method=method, template=template, key=key, scope=scope,
                 access=resources.access_of(method, template, key, native, table.accesses),
                 audited=method in permissions.WRITE_METHODS and
                 (scope != READ or permissions.spends_gateway(method, judged)),
                 # OPTIONS only answers which methods a route allows.
                 classified=template == UNMATCHED or public or method == "OPTIONS" or
                 resources.is_known(template, key, native),
                 native=native)
