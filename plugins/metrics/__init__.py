"""Prometheus metrics for every route (Flask and FastAPI-native alike), correct
across workers through prometheus_client's multiprocess mode.

Requests are observed by the pipeline adapters, not by Flask hooks (the same
reason the gate is not a Flask hook: FastAPI-native routes bypass Flask), so
prometheus-flask-exporter's Flask instrumentation is not used for them.
"""

from __future__ import annotations

import os

from mlflow_hokusai.serverdir import server_dir

# It counts the breaker's transitions and the limiter's refusals (their senders).
NEEDS = ("health", "ratelimit")


def _multiprocess_dir(settings) -> str:
    """One directory per server instance, shared by its workers (their parent),
    unless the operator or ``mlflow server --expose-prometheus`` chose one."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.metrics_dir or \
        server_dir("metrics")
    os.makedirs(path, exist_ok=True)
    # prometheus_client reads this when it is first imported, which is below.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def init_app(flask_app, hokusai) -> None:
    _multiprocess_dir(hokusai.settings)
    from mlflow_hokusai.plugins.metrics import collectors, endpoint

    collectors.subscribe(flask_app, hokusai)
    # /api/metrics: the API reference's base URL is https://host/api.
    for path in ("/metrics", "/api/metrics"):
        flask_app.add_url_rule(path, endpoint=f"hokusai{path.replace('/', '_')}",
                               view_func=endpoint.metrics)
        if not hokusai.settings.metrics_require_auth:
            hokusai.routes.add_public_path(path)
