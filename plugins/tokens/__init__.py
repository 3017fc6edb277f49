"""Tokenized models, contributor impact and model lineage: REST endpoints over
the registry index the stores keep (plugins/store)."""

from __future__ import annotations


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.tokens.views import blueprint

    flask_app.register_blueprint(blueprint)
