"""MLflow's own JSON routes: their request bodies checked before MLflow reads
them, and their error messages kept free of SQL.

MLflow's handlers read any body as JSON (``get_json(force=True)``, a JSON string
decoded once more for old clients) and expect an object: anything else (``[]``,
``1``, ``"x"``) fails inside the handler as an HTML 500, on about a dozen
routes; ``/graphql`` fails the same way without a body or a ``query``. Since
the gate stands in front of MLflow, it answers those with a 400 JSON instead,
in MLflow's error shape, as a Flask ``before_request`` for MLflow's routes only
(Hokusai's own blueprints, all named ``hokusai_*``, check their bodies
themselves). Strings no database can store
(NUL, unpaired surrogates) are refused here too. Artifact uploads and
downloads stream and are left alone.

MLflow's stores put a database error's text in the message they answer, SQL
statement, parameters and database host included; an ``after_request`` answers
MLflow's JSON errors without it (errors.without_sql).
"""

from __future__ import annotations

import json

import flask

from mlflow_hokusai.errors import BadRequest, without_sql
from mlflow_hokusai.values import UNSTORABLE_MESSAGE, unstorable_text

# Artifact bodies are files, never JSON: the artifact proxy, and the UI's
# upload of a run's artifact (ajax-api/2.0/mlflow/upload-artifact).
_FILES = ("/mlflow-artifacts/", "/upload-artifact")
NOT_AN_OBJECT = "The request body must be a JSON object"


def _decoded(raw: bytes):
    """The body as MLflow's handlers read it; None where they read nothing (no
    body, or one that is not JSON at all: MLflow reads that as empty)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(body, str):  # double-encoded by an old client
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest(NOT_AN_OBJECT) from None
    return body


def check_body() -> None:
    request = flask.request
    if (request.blueprint or "").startswith("hokusai") or \
            any(part in request.path for part in _FILES):
        return
    graphql = request.path.rstrip("/").endswith("/graphql")
    raw = request.get_data(cache=True)
    if not raw.strip():
        if graphql:
            raise BadRequest("GraphQL needs a JSON object body with a 'query' string")
        return
    body = _decoded(raw)
    if body is None and not graphql:
        return
    if not isinstance(body, dict):
        raise BadRequest(NOT_AN_OBJECT)
    if graphql and not isinstance(body.get("query"), str):
        raise BadRequest("GraphQL needs a JSON object body with a 'query' string")
    where = unstorable_text(body)
    if where is not None:
        raise BadRequest(f"Field {'.'.join(map(str, where))}: text {UNSTORABLE_MESSAGE}")


def scrub_error(response: flask.Response) -> flask.Response:
    if response.status_code < 400 or response.mimetype != "application/json" \
            or response.is_streamed:
        return response
    try:
        body = json.loads(response.get_data())
    except (ValueError, RecursionError):
        return response
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = without_sql(body["message"])
        if message != body["message"]:
            response.set_data(json.dumps({**body, "message": message}))
    return response


def init_app(flask_app: flask.Flask) -> None:
    # First of all the hooks: a body's shape is judged before anyone reads an id
    # from it (the permission check would otherwise answer "missing id").
    flask_app.before_request_funcs.setdefault(None, []).insert(0, check_body)
    flask_app.after_request(scrub_error)
