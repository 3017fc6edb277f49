"""The REST layer shared by Hokusai's JSON APIs (models, tokens, ...).

- ``RestBlueprint.operation`` serves a view at ``/api<path>`` and ``<path>``,
  validates path, query and body with pydantic models (422 in FastAPI's shape),
  and answers errors as ``{"detail": ...}`` (see rest.blueprint).
- MLflow's own JSON routes get their bodies checked before MLflow reads them
  (rest.mlflow_json): a body that is no JSON object is a 400 JSON, not a 500;
  their error messages carry no SQL.
- ``/api/openapi.json`` describes every such operation (rest.openapi); it needs
  the ``read`` scope unless ``HOKUSAI_OPENAPI_PUBLIC=true``.

Installed by the app like a plugin (``init_app``); blueprints register as usual
with ``flask_app.register_blueprint``.
"""

from __future__ import annotations

import flask

from mlflow_hokusai.rest.blueprint import BodyModel, QueryModel, Raw, RestBlueprint

__all__ = ["BodyModel", "QueryModel", "Raw", "RestBlueprint", "init_app", "OPENAPI_PATH"]
OPENAPI_PATH = "/api/openapi.json"


def _openapi():
    from mlflow_hokusai.rest import openapi

    app = flask.current_app
    document = app.extensions.get("hokusai_openapi")
    if document is None:  # the routes are fixed once the app serves: build once
        document = app.extensions["hokusai_openapi"] = openapi.build(app)
    return flask.jsonify(document)


def init_app(flask_app: flask.Flask, hokusai) -> None:
    from mlflow_hokusai.plugins.auth import permissions
    from mlflow_hokusai.rest import mlflow_json

    mlflow_json.init_app(flask_app)

    flask_app.add_url_rule(OPENAPI_PATH, endpoint="hokusai_openapi", view_func=_openapi)
    if hokusai.settings.openapi_public:
        permissions.add_public_path(OPENAPI_PATH)
