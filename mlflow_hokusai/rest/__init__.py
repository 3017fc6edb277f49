"""The REST layer shared by Hokusai's JSON APIs (models, tokens, ...).

- ``RestBlueprint.operation`` serves a view at ``/api<path>`` and ``<path>``,
  validates path, query and body with pydantic models (422 in FastAPI's shape),
  and answers errors as ``{"detail": ...}`` (see rest.blueprint).
- MLflow's own JSON routes get their bodies checked before MLflow reads them
  (rest.mlflow_json): a body that is no JSON object is a 400 JSON, not a 500;
  their error messages carry no SQL.
- ``/api/openapi.json`` describes every such operation (rest.openapi), and
  ``/docs`` shows it in Swagger UI (rest.docs, files of the ``swagger-ui-py``
  package, never a CDN); both public unless ``HOKUSAI_OPENAPI_PUBLIC=false``.
- Every error the app answers is the one JSON body of mlflow_hokusai.errors,
  unknown paths and unexpected failures included (no Werkzeug HTML page).

Installed by the app like a plugin (``init_app``); blueprints register as usual
with ``flask_app.register_blueprint``.
"""

from __future__ import annotations

import flask

from mlflow_hokusai.rest.blueprint import BodyModel, QueryModel, Raw, RestBlueprint

__all__ = ["OPENAPI_PATH", "BodyModel", "QueryModel", "Raw", "RestBlueprint", "init_app"]
OPENAPI_PATH = "/api/openapi.json"


def _openapi():
    from mlflow_hokusai.rest import openapi

    app = flask.current_app
    document = app.extensions.get("hokusai_openapi")
    if document is None:  # the routes are fixed once the app serves: build once
        document = app.extensions["hokusai_openapi"] = openapi.build(app)
    return flask.jsonify(document)


def init_app(flask_app: flask.Flask, hokusai) -> None:
    from werkzeug.exceptions import HTTPException

    from mlflow_hokusai.rest import aliases, docs, mlflow_json
    from mlflow_hokusai.rest.blueprint import unexpected_error

    mlflow_json.init_app(flask_app)
    aliases.init_app(flask_app)
    flask_app.register_error_handler(HTTPException, unexpected_error)
    flask_app.register_error_handler(Exception, unexpected_error)

    flask_app.add_url_rule(OPENAPI_PATH, endpoint="hokusai_openapi", view_func=_openapi)
    public = docs.init_app(flask_app)
    if hokusai.settings.openapi_public:
        for path in (OPENAPI_PATH, *public):
            hokusai.routes.add_public_path(path)
