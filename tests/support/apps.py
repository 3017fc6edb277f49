"""Hokusai apps built in the test process: the settings they run on and a
plain Flask app behind their pipeline, as ``create_app`` puts it."""

from __future__ import annotations

import flask

from mlflow_hokusai.app import Hokusai
from mlflow_hokusai.settings import Settings
from mlflow_hokusai.wsgi import WsgiAdapter


def settings(tmp_path, **env) -> Settings:
    """No serving supervisor, no sessions, the audit spool in ``tmp_path``."""
    return Settings.from_env({"HOKUSAI_SERVING_ENABLED": "false", "HOKUSAI_SESSIONS_ENABLED":
                              "false", "HOKUSAI_AUDIT_SPOOL_DIR": str(tmp_path / "audit"),
                              **env})


def serve(name: str, hokusai: Hokusai) -> flask.Flask:
    """A plain Flask app (MLflow's own is a module singleton) behind the
    pipeline."""
    app = flask.Flask(name)
    hokusai.init_app(app)
    app.wsgi_app = WsgiAdapter(app.wsgi_app, hokusai.pipeline, hokusai.body_limit)
    hokusai.routes.build()
    return app
