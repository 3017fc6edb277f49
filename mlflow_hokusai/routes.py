"""The route table: every route the server answers, annotated once at start-up,
and each request resolved against it once, into ``context.route``.

Built from the routers that actually serve (FastAPI-native routes first, as
the ASGI app tries them, then Flask's URL map). Each (method, template) gets
one ``Route``: the scope it needs, the resource it touches and the permission
level on it (plugins.auth.resources), its rate-limit group, whether it is
audited, and its metrics template. The gate, the permission check, the
limiter, the audit trail and the metrics all read that one decision.

A route the table cannot classify (one a newer MLflow added, which nobody has
judged yet) is served to nobody: ``Route.classified`` is false and the gate
refuses it. tests/e2e/test_route_coverage.py fails on such a route.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable

from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

UNMATCHED = "unmatched"


@dataclasses.dataclass(frozen=True)
class Access:
    """What a route touches: a resource ``kind`` (see plugins.auth.resources),
    found by ``locator``, and the permission ``level`` it needs on it. ``many``:
    the locator names a list, every id in it is judged; ``also``: further
    resources the same request may name, each judged when it is named."""

    kind: str
    level: str
    locator: str = ""
    many: bool = False
    also: tuple = ()


@dataclasses.dataclass(frozen=True)
class Rule:
    """The scope requests of ``methods`` to paths matching ``pattern`` need."""

    methods: frozenset[str]
    pattern: re.Pattern
    scope: str


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    template: str  # also the metrics label and the audit action
    key: str  # MLflow's request class, a view's endpoint, or the template
    scope: str
    access: Access | None = None
    rate_group: str | None = None
    audited: bool = False
    classified: bool = True
    native: bool = False  # a FastAPI-native route (never reaches Flask)


@dataclasses.dataclass(frozen=True)
class Resolved:
    route: Route
    params: dict  # path parameters, as the router will pass them


def fastapi_routes(routes):
    """(methods, path template, compiled regex, name) of FastAPI-native routes,
    skipping the mount that hands everything else to Flask."""
    from starlette.routing import Mount

    lazy: tuple[type, ...]
    try:  # FastAPI >= 0.16x keeps included routers lazily
        from fastapi.routing import _IncludedRouter
        lazy = (_IncludedRouter,)
    except ImportError:  # pragma: no cover - older FastAPI lists routes flat
        lazy = ()
    for route in routes:
        if isinstance(route, lazy):
            yield from fastapi_routes(route.effective_candidates())
        elif not isinstance(route, Mount) and getattr(route, "path", None):
            yield frozenset(route.methods or ()), route.path, route.path_regex


def flask_routes(flask_app):
    for rule in flask_app.url_map.iter_rules():
        yield frozenset(rule.methods), rule.rule


# The Hokusai API reference's verbs for MLflow routes, served beside MLflow's
# (mlflow_hokusai.rest.aliases): request class -> (MLflow's method, the alias).
VERB_ALIASES = {"SearchRuns": ("POST", "GET"), "UpdateRegisteredModel": ("PATCH", "POST"),
                "DeleteRegisteredModel": ("DELETE", "POST"),
                "UpdateModelVersion": ("PATCH", "POST")}


def mlflow_request_classes() -> dict[tuple[str, str], str]:
    """(path, method) -> the protobuf request class MLflow serves there: the
    stable name of an MLflow route, whatever its path spellings, and whichever
    verb (an alias of VERB_ALIASES is the same route, judged the same way)."""
    from mlflow.server import handlers

    named = {}
    for path, handler, methods in handlers.get_endpoints(lambda cls: cls):
        name = getattr(handler, "__name__", str(handler))
        for method in methods:
            named[(path, method)] = name
        if name in VERB_ALIASES and VERB_ALIASES[name][0] in methods:
            named[(path, VERB_ALIASES[name][1])] = name
    return named


Annotate = Callable[["RouteTable", str, str, str, bool], Route]


class RouteTable:
    """``annotate(table, method, template, key, native) -> Route`` is the auth
    plugin's (it owns scopes, resources and the allow-list); the table
    enumerates and matches, and holds what each plugin declared about its
    routes, for this app only (a second app in the process has its own)."""

    def __init__(self, flask_app, annotate: Annotate):
        self.flask_app = flask_app
        self._annotate = annotate
        # Plugins fill in the fields they own (the limiter its rate-limit group).
        self.refiners: list[Callable[[Route], Route]] = []
        # Declared by plugins, read by the annotator and the public-route step.
        self.rules: list[Rule] = []  # first match wins, ahead of the built-in ones
        self.public_paths: set[str] = set()  # GET/HEAD only, matched exactly
        self.accesses: dict[tuple[str, str], Access] = {}  # (method, template) -> Access
        self.routes: list[Route] = []
        self._native: list[tuple[re.Pattern, dict[str, Route]]] = []
        self._flask: dict[tuple[str, str], Route] = {}
        self._adapter: MapAdapter | None = None
        self.built = False

    def add_rule(self, methods, pattern: str, scope: str) -> None:
        """Requests of ``methods`` to paths matching ``pattern`` need ``scope``;
        put ahead of the rules declared before (first match wins)."""
        self.rules.insert(0, Rule(frozenset(methods), re.compile(pattern), scope))

    def add_public_path(self, path: str) -> None:
        self.public_paths.add(path)

    def declare(self, method: str, template: str, access: Access) -> None:
        """What one of a plugin's routes touches (see plugins.auth.resources)."""
        self.accesses[(method, template)] = access

    def annotate(self, method: str, template: str, key: str, native: bool) -> Route:
        route = self._annotate(self, method, template, key, native)
        for refine in self.refiners:
            route = refine(route)
        return route

    def build(self, fastapi_app=None) -> RouteTable:
        names = mlflow_request_classes()
        self.routes, self._native, self._flask = [], [], {}
        if fastapi_app is not None:
            for methods, template, regex in fastapi_routes(fastapi_app.router.routes):
                by_method = {m: self.annotate(m, template, f"fastapi:{template}", True)
                             for m in methods}
                self._native.append((regex, by_method))
                self.routes.extend(by_method.values())
        for rule in self.flask_app.url_map.iter_rules():
            for method in sorted(rule.methods):
                # HEAD is served by the GET view.
                key = names.get((rule.rule, "GET" if method == "HEAD" else method)) or \
                    rule.endpoint
                route = self.annotate(method, rule.rule, key, False)
                # Several rules can share a template (one per view): the router
                # picks the first that allows the method, and so does the table.
                self._flask.setdefault((rule.rule, method), route)
                self.routes.append(route)
        self._adapter = self.flask_app.url_map.bind("localhost")
        self.resolve.cache_clear()
        self.built = True
        return self

    def unclassified(self) -> list[Route]:
        return [route for route in self.routes if not route.classified]

    def _unmatched_route(self, method: str, path: str) -> Route:
        # No router serves it (MLflow answers 404); it still needs a credential,
        # judged on the path itself (its key), and counts under one label.
        return self.annotate(method, UNMATCHED, path, False)

    # One table per app, kept for the app's life: the cache holding it alive leaks nothing.
    @functools.lru_cache(maxsize=8192)  # noqa: B019
    def resolve(self, method: str, path: str) -> Resolved:
        """The route a request for ``path`` will be routed to, as the routers
        will choose it: FastAPI-native routes first, then Flask's."""
        for regex, by_method in self._native:
            match = regex.match(path)
            if match and method in by_method:
                return Resolved(by_method[method], match.groupdict())
        assert self._adapter is not None, "build() first"
        try:
            rule, params = self._adapter.match(path, method, return_rule=True)
        except HTTPException:  # not found, wrong method, or a trailing-slash redirect
            return Resolved(self._unmatched_route(method, path), {})
        return Resolved(self._flask[(rule.rule, method)], dict(params))

    def template(self, method: str, path: str) -> str:
        return self.resolve(method, path).route.template
