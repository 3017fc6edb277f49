"""The shapes the Hokusai API reference gives the MLflow health answers, built
from the same check results (plugins.health.checks) as the rest.

``mlflow_server`` is this server's own URL: MLflow runs inside it, so that is
the tracking URI a client uses. The backend store's URI is never shown to the
public routes (it names the database host and user)."""

from __future__ import annotations

import os

import flask

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.plugins.health import checks

# What each check exercises, as the MLflow REST call a client would make.
_ENDPOINTS = {"connectivity": "/health", "experiments_api": "/api/2.0/mlflow/experiments/search",
              "registry_api": "/api/2.0/mlflow/registered-models/search",
              "artifacts_api": "/api/2.0/mlflow-artifacts/artifacts",
              "database": "/ready", "circuit_breaker": "/health/mlflow"}
_STATUS = {"pass": "healthy", "disabled": "disabled", "timeout": "timeout"}
_MESSAGE = {"pass": "{} is functional", "disabled": "{} is not configured",
            "timeout": "{} timed out"}


def server_url() -> str:
    return flask.request.host_url.rstrip("/")


def reference_state(state: str) -> str:
    """The breaker's state as the reference writes it: CLOSED, OPEN, HALF_OPEN."""
    return state.upper()


def check_entry(result: checks.CheckResult, public: dict) -> dict:
    """``{"status": "healthy"|"unhealthy"|..., "message"}`` with the other
    fields of the check kept (``public`` is the check as the route shows it)."""
    label = result.name.replace("_", " ")
    message = _MESSAGE.get(result.status, "{} failed").format(label)
    if public.get("error"):
        message += f": {public['error']}"
    return {**public, "status": _STATUS.get(result.status, "unhealthy"), "check_status":
            result.status, "message": message}


def status_code(result: checks.CheckResult) -> int:
    return 200 if result.passed else 504 if result.status == "timeout" else 503


def test_entry(result: checks.CheckResult) -> dict:
    return {"endpoint": result.name, "url": server_url() + _ENDPOINTS.get(result.name, ""),
            "status_code": status_code(result), "success": result.passed,
            "response_time_ms": result.response_time_ms}


def environment(settings) -> dict:
    """What the reference's ``environment`` shows, without secrets."""
    return {"MLFLOW_SERVER_URL": server_url(),
            "MLFLOW_SERVE_ARTIFACTS": os.environ.get(mlflow_compat.SERVE_ARTIFACTS_ENV,
                                                     "false").lower() == "true",
            "SERVER": os.environ.get(mlflow_compat.SGI_NAME_ENV, "flask"),
            "HOKUSAI_ENVIRONMENT_NAME": settings.environment_name}
