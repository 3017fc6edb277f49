"""Tokenized models, contributor impact and model lineage: REST endpoints over
the registry index the stores keep (plugins/store)."""

from __future__ import annotations

from mlflow_hokusai.plugins.auth import resources
from mlflow_hokusai.routes import Access


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.tokens.views import blueprint

    # A model's lineage is read from its registered model (the path names it).
    hokusai.routes.declare("GET", "/models/<model_id>/lineage",
                           Access("registered_model", resources.READ, "model_id"))
    hokusai.routes.declare("GET", "/models/<model_name>/<version>/lineage",
                           Access("registered_model", resources.READ, "model_name"))

    flask_app.register_blueprint(blueprint)
