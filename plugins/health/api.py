"""Health, readiness, liveness, version and breaker endpoints.

Public answers name a failing check's exception type only; the authenticated
``/health/status`` carries the messages (they can name hosts and ports).
"""

from __future__ import annotations

import datetime
import logging
import os
import time

import flask
import psutil

import mlflow_hokusai
from mlflow_hokusai.pipeline import required_principal
from mlflow_hokusai.plugins.health import checks, shapes
from mlflow_hokusai.plugins.health.breaker import OPEN

blueprint = flask.Blueprint("hokusai_health", __name__)
_logger = logging.getLogger(__name__)
STARTED = time.time()
API_VERSION = "v1"
SERVICE_NAME = "mlflow-hokusai"


def _hokusai():
    return flask.current_app.extensions["hokusai"]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _public(result: checks.CheckResult) -> dict:
    data = result.to_dict()
    if data["error"]:
        data["error"] = data["error"].split(":", 1)[0]
    return data


def run_all(hokusai) -> dict[str, checks.CheckResult]:
    hokusai.breaker.refresh()  # so that the checks below count as half-open probes
    return checks.run_checks(hokusai.health_checks, hokusai.settings.health_check_timeout_seconds)


def evaluate(names: list[str] | None = None, fresh: bool = False
             ) -> dict[str, checks.CheckResult]:
    """Public routes get the worker's cached results (``hokusai.health_cache``);
    ``fresh`` runs the checks now (authenticated ``/health/status``)."""
    hokusai = _hokusai()
    results = run_all(hokusai) if fresh else hokusai.health_cache.get()
    results = {name: r for name, r in results.items() if names is None or name in names}
    breaker = hokusai.breaker
    results["circuit_breaker"] = checks.CheckResult(
        "circuit_breaker", "fail" if breaker.state == OPEN else "pass", 0.0, True,
        f"circuit breaker {breaker.state}" if breaker.state == OPEN else None)
    return results


def overall(results: dict[str, checks.CheckResult]) -> str:
    if any(not r.passed and r.critical for r in results.values()):
        return "unhealthy"
    if any(not r.passed for r in results.values()) or _hokusai().breaker.state != "closed":
        return "degraded"
    return "healthy"


def _services(results) -> dict[str, str]:
    mlflow_checks = [results[n] for n in ("connectivity", "experiments_api", "registry_api",
                                          "artifacts_api", "circuit_breaker")]
    services = {"mlflow": overall({r.name: r for r in mlflow_checks}),
                "database": "healthy" if results["database"].passed else "unhealthy"}
    if _hokusai().engine.dialect.name == "postgresql":  # the reference's name for it
        services["postgres"] = services["database"]
    services.update({name: probe() for name, probe in _hokusai().services.items()})
    return services


def _answer(body: dict, healthy: bool):
    return flask.jsonify(body), 200 if healthy else 503


def health():
    """Replaces MLflow's plain-text /health (installed by plugins.health.init_app)."""
    results = evaluate()
    status, services = overall(results), _services(results)
    if status == "healthy" and "unhealthy" in services.values():
        status = "degraded"  # an optional service (Redis) is down
    return _answer({"status": status, "version": mlflow_hokusai.__version__,
                    "services": services, "timestamp": _now()}, status != "unhealthy")


@blueprint.get("/ready")
@blueprint.get("/api/ready")
def ready():
    results = evaluate()
    ready_ = all(r.passed for r in results.values() if r.critical)
    return _answer({"ready": ready_, "can_serve_traffic": ready_,
                    "checks": [{"name": r.name, "passed": r.passed,
                                "error": _public(r)["error"], "critical": r.critical}
                               for r in results.values()],
                    "degraded_mode": any(not r.passed for r in results.values()),
                    "timestamp": _now()}, ready_)


@blueprint.get("/live")
@blueprint.get("/api/live")
def live():
    # Never touches a backend: a live process with a dead database is still alive.
    return {"alive": True, "uptime": round(time.time() - STARTED, 3),
            "memory_usage_mb": round(psutil.Process().memory_info().rss / 2**20, 1)}


def _wants_plain_version() -> bool:
    """MLflow's own clients parse /version as a bare version string (they check it
    before logging spans), so they keep getting one."""
    request = flask.request
    if "X-MLflow-Client-Version" in request.headers or \
            request.headers.get("User-Agent", "").startswith("mlflow-"):
        return True
    accept = request.accept_mimetypes
    return accept.quality("text/plain") > accept.quality("application/json")


def version():
    """Replaces MLflow's /version (installed by plugins.health.init_app)."""
    import mlflow

    if _wants_plain_version():
        return flask.Response(mlflow.__version__, mimetype="text/plain")
    settings = _hokusai().settings
    return {"version": mlflow_hokusai.__version__, "build_date": settings.build_date,
            "git_commit": settings.git_commit, "api_version": API_VERSION,
            "mlflow_version": mlflow.__version__}


def _mlflow_health(detailed: bool):
    names = ["connectivity", "experiments_api", "artifacts_api"]
    if detailed:
        names += ["registry_api", "database"]
    results = evaluate(names)
    breaker = _hokusai().breaker
    status = overall(results)
    if not detailed:
        status = "healthy" if all(r.passed for r in results.values()) else "unhealthy"
    body = {"status": status, "mlflow_server": shapes.server_url(),
            "connected": results["connectivity"].passed,
            "circuit_breaker_state": shapes.reference_state(breaker.state),
            "circuit_breaker": breaker.snapshot(),
            "checks": {name: shapes.check_entry(r, _public(r)) for name, r in results.items()},
            "timestamp": _now()}
    if detailed:
        body.update(overall_health=status != "unhealthy", overall_status=status,
                    environment=shapes.environment(_hokusai().settings),
                    tests=[shapes.test_entry(r) for r in results.values()])
    return _answer(body, status != "unhealthy" if detailed else status == "healthy")


@blueprint.get("/health/mlflow")
@blueprint.get("/api/health/mlflow")
@blueprint.get("/mlflow/health/mlflow")
def mlflow_health():
    return _mlflow_health(detailed=False)


@blueprint.get("/api/health/mlflow/detailed")
@blueprint.get("/mlflow/health/mlflow/detailed")
def mlflow_health_detailed():
    return _mlflow_health(detailed=True)


@blueprint.get("/api/health/mlflow/connectivity")
def mlflow_connectivity():
    result = evaluate(["connectivity"])["connectivity"]
    status = {"pass": "connected", "timeout": "timeout"}.get(result.status, "error")
    body = {"status": status, "mlflow_server": shapes.server_url(),
            "response_code": shapes.status_code(result),
            "response_time_ms": result.response_time_ms,
            "error": _public(result)["error"], "timestamp": _now()}
    return _answer(body, status == "connected")


@blueprint.get("/health/status")
def status():
    hokusai = _hokusai()
    results = evaluate(fresh=True)
    process = psutil.Process()
    breaker = hokusai.breaker
    return {"status": overall(results), "overall_health": overall(results),
            "version": mlflow_hokusai.__version__, "api_version": API_VERSION,
            "service_name": SERVICE_NAME, "environment": hokusai.settings.environment_name,
            "mlflow": {"status": {"connected": results["connectivity"].passed,
                                  "circuit_breaker_state": shapes.reference_state(breaker.state)},
                       "circuit_breaker": {**breaker.snapshot(),
                                           "state": shapes.reference_state(breaker.state)}},
            "system_info": {"cpu_percent": psutil.cpu_percent(interval=None),
                            "memory_percent": psutil.virtual_memory().percent},
            "uptime_seconds": round(time.time() - STARTED, 3),
            "services": _services(results),
            "checks": {name: r.to_dict() for name, r in results.items()},
            "circuit_breaker": hokusai.breaker.snapshot(),
            "process": {"pid": os.getpid(), "cpu_percent": process.cpu_percent(interval=0.05),
                        "memory_mb": round(process.memory_info().rss / 2**20, 1),
                        "threads": process.num_threads()},
            "timestamp": _now()}


@blueprint.post("/health/mlflow/reset")
def reset_breaker():
    breaker = _hokusai().breaker
    previous = breaker.reset()
    principal = required_principal()
    _logger.warning("Circuit breaker reset by %s (was %s)", principal.label, previous)
    return {"message": "Circuit breaker reset", "previous_state": previous,
            "circuit_breaker_state": breaker.state, "reset_by": principal.username,
            "reset_by_key": principal.key_id, "worker_pid": os.getpid(), "timestamp": _now()}
