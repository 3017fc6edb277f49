"""Benchmarks measured by the registry (issue 16): a token's benchmark spec,
measuring a version on it in the sandbox, and which values are verified."""

from __future__ import annotations

from mlflow_hokusai import signals
from mlflow_hokusai.db import model_rows
from mlflow_hokusai.db.schema import verified_values
from mlflow_hokusai.plugins.auth import resources
from mlflow_hokusai.routes import Access


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.benchmarks import hooks
    from mlflow_hokusai.plugins.benchmarks.views import blueprint

    # Measuring runs the version's code (in the sandbox) and writes its tags: EDIT.
    hokusai.routes.declare("POST", "/models/<name>/<version>/benchmark",
                           Access("registered_model", resources.EDIT, "name"))
    # The token routes name a token, not a model: their views check (MANAGE / READ).
    hokusai.connect(signals.benchmark_tag_set, hooks.on_tag_set)
    hokusai.connect(signals.model_changed, model_rows.follower(hokusai, verified_values))
    flask_app.register_blueprint(blueprint)
