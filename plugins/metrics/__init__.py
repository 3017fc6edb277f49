"""Prometheus metrics for every route (Flask and FastAPI-native alike), correct
across workers through prometheus_client's multiprocess mode.

Requests are observed by the pipeline adapters, not by Flask hooks (the same
reason the gate is not a Flask hook: FastAPI-native routes bypass Flask), so
prometheus-flask-exporter's Flask instrumentation is not used for them.
"""

from __future__ import annotations

import os

from mlflow_hokusai.plugins.auth import permissions
from mlflow_hokusai.serverdir import server_dir


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
    flask_app.add_url_rule("/metrics", endpoint="hokusai_metrics", view_func=endpoint.metrics)
    if not hokusai.settings.metrics_require_auth:
        permissions.add_public_path("/metrics")
