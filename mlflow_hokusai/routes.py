"""Every route the server answers, and which route template a request hit."""

from __future__ import annotations

import functools
import re

from werkzeug.exceptions import HTTPException

UNMATCHED = "unmatched"


def fastapi_routes(routes):
    """(methods, path template, compiled regex) of FastAPI-native routes, skipping
    the mount that hands everything else to Flask."""
    from starlette.routing import Mount

    try:  # FastAPI >= 0.16x keeps included routers lazily
        from fastapi.routing import _IncludedRouter
    except ImportError:  # pragma: no cover - older FastAPI lists routes flat
        _IncludedRouter = ()
    for route in routes:
        if _IncludedRouter and isinstance(route, _IncludedRouter):
            yield from fastapi_routes(route.effective_candidates())
        elif not isinstance(route, Mount) and getattr(route, "path", None):
            yield frozenset(route.methods or ()), route.path, route.path_regex


def flask_routes(flask_app):
    for rule in flask_app.url_map.iter_rules():
        yield frozenset(rule.methods), rule.rule


class RouteTemplates:
    """Route template of a request, for bounded metric labels. FastAPI-native
    routes are tried first, as the ASGI app does."""

    def __init__(self, flask_app, fastapi_app_getter):
        self.flask_app = flask_app
        self._fastapi_app = fastapi_app_getter
        self._native: list[tuple[frozenset, str, re.Pattern]] | None = None

    def _native_routes(self):
        if self._native is None:
            app = self._fastapi_app()
            self._native = list(fastapi_routes(app.router.routes)) if app is not None else []
        return self._native

    @functools.lru_cache(maxsize=4096)
    def template(self, method: str, path: str) -> str:
        for methods, template, regex in self._native_routes():
            if method in methods and regex.match(path):
                return template
        try:
            rule, _ = self.flask_app.url_map.bind("localhost").match(
                path, method, return_rule=True)
            return rule.rule
        except HTTPException:  # not found, wrong method, or a trailing-slash redirect
            return UNMATCHED
