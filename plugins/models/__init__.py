"""The model management REST API (issue 7): registry views, batch operations,
comparison and metrics, zip download, recorded predictions and evaluation.

Every route is served under ``/api`` and at the root path (see
mlflow_hokusai.rest); the gate's default applies: GET needs ``read``, every
other method ``write``; evaluation needs ``HOKUSAI_EVALUATION_SCOPE`` (``write``
by default: the model's code runs in the sandbox) and EDIT on the model.
"""

from __future__ import annotations

import importlib

from mlflow_hokusai import signals
from mlflow_hokusai.db import model_rows
from mlflow_hokusai.db.schema import predictions as prediction_counts
from mlflow_hokusai.plugins.auth.resources import EDIT, MANAGE, READ
from mlflow_hokusai.plugins.models.predictions import PredictionStore
from mlflow_hokusai.routes import Access

# Routes on one model version, judged by its registered model (the path's <name>).
# Registration and batches check inside the view: the model is in the body.
VERSION_ROUTES = (
    ("GET", "/models/<name>/<version>", READ), ("PATCH", "/models/<name>/<version>", EDIT),
    ("DELETE", "/models/<name>/<version>", MANAGE),
    ("POST", "/models/<name>/<version>/transition", EDIT),
    ("GET", "/models/<name>/<version>/metrics", READ),
    ("GET", "/models/<name>/<version>/download", READ),
    ("GET", "/models/<name>/<version>/predictions", READ),
    ("POST", "/models/<name>/<version>/predictions", EDIT),
)
VIEWS = ("views_registry", "views_batch", "views_insights", "views_files", "views_predictions",
         "views_evaluate")


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.models.blueprint import blueprint

    # Importing the view modules registers their operations on the blueprint.
    for name in VIEWS:
        importlib.import_module(f"{__name__}.{name}")

    for method, template, level in VERSION_ROUTES:
        hokusai.routes.declare(method, template, Access("registered_model", level, "name"))
    hokusai.routes.add_rule({"POST"}, r"(?:/api)?/models/evaluate",
                            hokusai.settings.evaluation_scope)
    hokusai.predictions = PredictionStore(hokusai.engine)
    hokusai.connect(signals.model_changed, model_rows.follower(hokusai, prediction_counts))
    flask_app.register_blueprint(blueprint)
