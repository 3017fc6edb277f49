"""Health, readiness, liveness and version endpoints, and the circuit breaker
that makes MLflow requests fail fast while the backend database is down."""

from __future__ import annotations

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.plugins.auth.scopes import ADMIN
from mlflow_hokusai.plugins.health import api, checks
from mlflow_hokusai.plugins.health.breaker import BreakerStep, CircuitBreaker, watch_sqlalchemy

# Each also under /api: the API reference's base URL is https://host/api.
PROBES = ("/health", "/ready", "/live", "/version")
PUBLIC_PATHS = (
    *PROBES, *("/api" + path for path in PROBES),
    "/health/mlflow", "/api/health/mlflow", "/mlflow/health/mlflow",
    "/api/health/mlflow/detailed", "/mlflow/health/mlflow/detailed",
    "/api/health/mlflow/connectivity",
)
# Behind credentials, but never refused by the breaker: they operate it.
BREAKER_CONTROLS = {"/health/status", "/health/mlflow/reset"}


def _serve(flask_app, path: str, view) -> None:
    """Take over a route MLflow already serves, or add it if MLflow dropped it."""
    for rule in flask_app.url_map.iter_rules():
        if rule.rule == path:
            flask_app.view_functions[rule.endpoint] = view
            return
    flask_app.add_url_rule(path, endpoint=f"hokusai_{view.__name__}", view_func=view)


def _drop_fastapi_health() -> None:
    # Under uvicorn MLflow answers /health natively, ahead of the Flask mount.
    mlflow_compat.drop_native_route("/health")


def init_app(flask_app, hokusai) -> None:
    settings = hokusai.settings
    hokusai.breaker = CircuitBreaker(settings.breaker_failure_threshold,
                                     settings.breaker_recovery_seconds,
                                     settings.breaker_success_threshold)
    watch_sqlalchemy(hokusai.breaker)
    hokusai.health_checks.extend([
        checks.Check("database", checks.hokusai_database(hokusai.engine), critical=True),
        checks.Check("connectivity", checks.mlflow_connectivity, critical=True),
        checks.Check("experiments_api", checks.experiments_api, critical=True),
        checks.Check("registry_api", checks.registry_api, critical=True),
        checks.Check("artifacts_api", checks.artifacts_api, critical=False),
    ])
    hokusai.health_cache = checks.Cached(lambda: api.run_all(hokusai),
                                         settings.health_cache_seconds)
    hokusai.services.setdefault("redis", lambda: "disabled")
    for path in PUBLIC_PATHS:
        hokusai.routes.add_public_path(path)
    hokusai.routes.add_rule({"POST"}, r"/health/mlflow/reset", ADMIN)
    breaker_step = BreakerStep(hokusai.breaker, BREAKER_CONTROLS)
    hokusai.pipeline.add(breaker_step, order=-10)
    hokusai.pipeline.on_refusal(breaker_step.on_refusal)
    _serve(flask_app, "/health", api.health)
    _serve(flask_app, "/version", api.version)
    for view in (api.health, api.version):
        flask_app.add_url_rule(f"/api/{view.__name__}", endpoint=f"hokusai_api_{view.__name__}",
                               view_func=view)
    _drop_fastapi_health()
    flask_app.register_blueprint(api.blueprint)
