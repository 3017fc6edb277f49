"""The ``mlflow.app`` entry point: ``mlflow server --app-name hokusai``.

``Hokusai`` is the extension object (flask-login style ``init_app``): it owns the
settings, the database and the request pipeline, and installs the built-in
plugins, which add their steps, routes and signal receivers. The factory then
puts the pipeline outermost: around the FastAPI app under uvicorn (which must
get an ASGI app back), around Flask's ``wsgi_app`` otherwise.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from blinker import ANY

from mlflow_hokusai import mlflow_compat, prefixes, signals, tcp
from mlflow_hokusai.bodies import BodyLimit
from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.engine import get_engine, resolve_database_uri
from mlflow_hokusai.errors import ConfigurationError, HokusaiError
from mlflow_hokusai.pipeline import Pipeline, RequestContext, refuse_nul_in_url, tag_request
from mlflow_hokusai.plugins.auth.gate import Gate
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from mlflow_hokusai.routes import RouteTable
from mlflow_hokusai.settings import Settings, get_settings

if TYPE_CHECKING:
    import flask

# Core features are plugins too. Each module exposes init_app(flask_app, hokusai)
# and may declare NEEDS: the names of the plugins it uses, installed before it.
BUILTIN_PLUGINS = (
    "mlflow_hokusai.plugins.auth",
    "mlflow_hokusai.plugins.health",
    "mlflow_hokusai.plugins.ratelimit",
    "mlflow_hokusai.plugins.metrics",
    "mlflow_hokusai.plugins.store",
    "mlflow_hokusai.plugins.audit",
    "mlflow_hokusai.plugins.models",
    "mlflow_hokusai.plugins.tokens",
    "mlflow_hokusai.plugins.contributors",
    "mlflow_hokusai.plugins.ledger",
    "mlflow_hokusai.plugins.benchmarks",
    "mlflow_hokusai.plugins.serving",
    "mlflow_hokusai.plugins.dspy",
    "mlflow_hokusai.plugins.monitoring",
    "mlflow_hokusai.plugins.browser",
    "mlflow_hokusai.rest",  # /api/openapi.json, describing the RestBlueprints
)

_logger = logging.getLogger("mlflow_hokusai")
READY_MESSAGE = "Hokusai serving"  # logged once per worker when its app is built


def configure_logging(level: str) -> None:
    if not _logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        _logger.addHandler(handler)
        _logger.propagate = False
    _logger.setLevel(level.upper())


class Hokusai:
    def __init__(self, settings: Settings | None = None, database_uri: str | None = None,
                 plugins: tuple[str, ...] = BUILTIN_PLUGINS):
        self.settings = settings or get_settings()
        self.plugins = plugins  # module names, installed in this order by init_app
        self.installed: list[str] = []  # their short names (NEEDS name these)
        self.database_uri = resolve_database_uri(database_uri)
        self.engine = get_engine(self.database_uri, self.settings.db_timeout_seconds)
        self.keystore = KeyStore(self.engine, environment=self.settings.key_environment,
                                 default_tier=self.settings.default_tier)
        self.gate = Gate(self.settings, self.keystore)
        self.pipeline = Pipeline()
        self.pipeline.add(tag_request, order=-30)
        self.pipeline.add(refuse_nul_in_url, order=-29)
        self.pipeline.add(self.resolve_route, order=-25)
        self.body_limit = BodyLimit(self.settings.max_request_body_mb)
        self.routes: RouteTable | None = None  # the route table (set by init_app)
        self.receivers = signals.Receivers(self)
        # Optional services shown by /health: name -> probe returning
        # "healthy", "degraded", "unhealthy" or "disabled" (plugins add theirs).
        self.services: dict[str, Callable[[], str]] = {}
        self.fastapi_app = None  # set under uvicorn, for route-aware plugins
        # Set by the plugins that own them, read by others (metrics, health).
        self.breaker = None  # plugins.health: CircuitBreaker
        self.health_checks: list = []  # plugins.health (and ratelimit adds Redis)
        self.health_cache = None  # plugins.health: their cached results, for public routes
        self.limiter = None  # plugins.ratelimit: Limiter, unless limits are off
        self.audit = None  # plugins.audit: AuditRecorder, unless auditing is off
        self.authorizer = None  # plugins.auth: per-resource permissions
        self.predictions = None  # plugins.models: PredictionStore
        self.contributor_links = None  # plugins.contributors: Links
        self.ledger = None  # plugins.ledger: Ledger
        self.serving = None  # plugins.serving: Serving (deployments, workers)
        self.dspy = None  # plugins.dspy: DspyService (program processes, records)
        self.monitoring = None  # plugins.monitoring: Monitoring (outcomes, checks)
        # Experiment names only the server creates (plugins/store/reserved.py).
        self.reserved_experiments: set[str] = set()

    def connect(self, signal, receiver, sender=ANY) -> None:
        """Connect a plugin's receiver to one of mlflow_hokusai.signals, for this
        app only (see signals.Receivers.connect)."""
        self.receivers.connect(signal, receiver, sender)

    def resolve_route(self, context: RequestContext, allow_io: bool) -> None:
        """A step, before all that judge a request: which route it is, once."""
        assert self.routes is not None, "init_app() first"
        if not self.routes.built:  # in-process use without create_app
            self.routes.build(self.fastapi_app)
        resolved = self.routes.resolve(context.request.method, context.request.path)
        context.route, context.route_params = resolved.route, resolved.params

    def install(self, flask_app, plugin) -> None:
        name = plugin.__name__.rpartition(".")[2]
        missing = [need for need in getattr(plugin, "NEEDS", ()) if need not in self.installed]
        if missing:
            raise ConfigurationError(
                f"Plugin {name!r} needs {', '.join(map(repr, missing))} installed before it "
                f"(installed so far: {', '.join(self.installed) or 'none'})")
        plugin.init_app(flask_app, self)
        self.installed.append(name)

    def init_app(self, flask_app) -> None:
        from mlflow_hokusai.web import error_response

        migrate.upgrade(self.engine)
        flask_app.extensions["hokusai"] = self
        from mlflow_hokusai.plugins.auth.annotate import annotate

        self.routes = RouteTable(flask_app, annotate)
        flask_app.register_error_handler(HokusaiError, error_response)
        for name in self.plugins:
            self.install(flask_app, importlib.import_module(name))
        # Last: it reads the routes every plugin registered.
        prefixes.init_app(flask_app, self)
        if self.keystore.count() == 0:
            _logger.warning("No API keys exist yet: every request will be refused. Create one "
                            "with `hokusai keys create --name admin --scopes admin`.")


def _open_mlflow_stores() -> None:
    """Build MLflow's stores while the worker starts. MLflow builds them on first
    use, and building one retries its database for about 100 s: a worker whose
    first registry call came during a database outage kept a thread in that loop
    and answered health checks with timeouts long after the database was back."""
    from mlflow.exceptions import MlflowException

    mlflow_compat.server_tracking_store()
    try:
        mlflow_compat.server_registry_store()
    except MlflowException:  # a tracking URI without a registry (MLflow allows it)
        pass


def create_app():
    from mlflow.server import app as flask_app

    from mlflow_hokusai.asgi import AsgiAdapter
    from mlflow_hokusai.direct import DirectRoutes
    from mlflow_hokusai.rest.blueprint import direct_endpoints
    from mlflow_hokusai.wsgi import WsgiAdapter

    hokusai = flask_app.extensions.get("hokusai")
    if hokusai is None:
        configure_logging(get_settings().log_level)
        hokusai = Hokusai()
        hokusai.init_app(flask_app)
        _open_mlflow_stores()
    assert hokusai.routes is not None  # set by init_app
    app: AsgiAdapter | flask.Flask
    if os.environ.get(mlflow_compat.SGI_NAME_ENV) == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        tcp.no_delay_on_listening_sockets()
        hokusai.fastapi_app = create_fastapi_app(flask_app)
        hokusai.routes.build(hokusai.fastapi_app)
        app = AsgiAdapter(hokusai.fastapi_app, hokusai.pipeline, hokusai.body_limit,
                          DirectRoutes(flask_app, direct_endpoints(flask_app)))
    else:
        if not isinstance(flask_app.wsgi_app, WsgiAdapter):
            # Flask's documented way to put middleware around its WSGI app.
            flask_app.wsgi_app = WsgiAdapter(  # type: ignore[method-assign]
                flask_app.wsgi_app, hokusai.pipeline,
                                             hokusai.body_limit)
        hokusai.routes.build()
        app = flask_app
    _logger.info("%s: worker %d ready", READY_MESSAGE, os.getpid())
    return app
