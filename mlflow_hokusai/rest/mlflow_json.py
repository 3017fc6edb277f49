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
MLflow's JSON errors without it (errors.without_sql), and adds the API
reference's error fields to them. MLflow's plain-text or HTML error answers
(a disabled workspace route's 503, a 400 of werkzeug's) become the same JSON.

A few fields MLflow's handlers parse without checking (``int()`` of a string
field, a 500 on anything else) are checked here first: ``FIELD_CHECKS``.
"""

from __future__ import annotations

import html
import json
import re

import flask

from mlflow_hokusai.errors import (
    BadRequest,
    FromMlflowText,
    reference_code,
    render,
    without_sql,
)
from mlflow_hokusai.values import UNSTORABLE_MESSAGE, unstorable_text
from mlflow_hokusai.web import request_id

# Artifact bodies are files, never JSON: the artifact proxy, and the UI's
# upload of a run's artifact (ajax-api/2.0/mlflow/upload-artifact).
_FILES = ("/mlflow-artifacts/", "/upload-artifact")
NOT_AN_OBJECT = "The request body must be a JSON object"
# MLflow's API routes, whose every answer is JSON (the UI's pages and static
# files are not checked).
_API = re.compile(r"/(?:ajax-)?api/|/graphql$")
_TAG = re.compile(r"<[^>]+>")


def _whole_number(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or \
        (isinstance(value, str) and value.isascii() and value.isdigit())


def _prompt_versions(body: dict, args) -> str | None:
    for index, item in enumerate(body.get("prompt_versions") or ()):
        if isinstance(item, dict) and "version" in item and not _whole_number(item["version"]):
            return f"Field prompt_versions.{index}.version must be a whole number"
    return None


def _page_token_offset(body: dict, args) -> str | None:
    token = args.get("page_token") or body.get("page_token")
    if token and not _whole_number(token):
        return "Field page_token must be a page token this route returned"
    return None


def _webhook_events(body: dict, args) -> str | None:
    from mlflow.protos import webhooks_pb2

    fields = {field: {value.name: value.number for value in enum.DESCRIPTOR.values
                      if value.number}  # 0 is the unspecified one
              for field, enum in (("entity", webhooks_pb2.WebhookEntity),
                                  ("action", webhooks_pb2.WebhookAction))}
    for index, event in enumerate(body.get("events") or ()):
        for field, known in fields.items():
            value = event.get(field) if isinstance(event, dict) else None
            if value not in known and not (type(value) is int and value in known.values()):
                return f"Field events.{index}.{field} must be one of {', '.join(known)}"
    return None


def _demo_features(body: dict, args) -> str | None:
    features = body.get("features")
    if features is not None and not (isinstance(features, list) and
                                     all(isinstance(item, str) for item in features)):
        return "Field features must be a list of demo feature names"
    return None


# (path pattern, check(body, query args) -> problem or None), for MLflow 3.17's
# handlers: link-prompts reads int(version), the dataset records' page token is
# an int() offset, a webhook's events become enums (an unknown one is a 500),
# the demo's features are searched with ``in`` (a number is a 500).
FIELD_CHECKS = (
    (re.compile(r"/mlflow/traces/link-prompts$"), _prompt_versions),
    (re.compile(r"/mlflow/datasets/[^/]+/records$"), _page_token_offset),
    (re.compile(r"/mlflow/webhooks(?:/[^/]+)?$"), _webhook_events),
    (re.compile(r"/mlflow/demo/generate$"), _demo_features),
)


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
    _check_fields(_body_object(request), request)


def _body_object(request) -> dict:
    """The JSON object MLflow's handler will read ({} for none: MLflow then
    reads the query string), refused when it is no object, a GraphQL call
    without a query, or text no database can store."""
    raw = request.get_data(cache=True)
    body = _decoded(raw) if raw.strip() else None
    if request.path.rstrip("/").endswith("/graphql") and \
            not (isinstance(body, dict) and isinstance(body.get("query"), str)):
        raise BadRequest("GraphQL needs a JSON object body with a 'query' string")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest(NOT_AN_OBJECT)
    where = unstorable_text(body)
    if where is not None:
        raise BadRequest(f"Field {'.'.join(map(str, where))}: text {UNSTORABLE_MESSAGE}")
    return body


def _check_fields(body: dict, request) -> None:
    for pattern, check in FIELD_CHECKS:
        if pattern.search(request.path):
            problem = check(body, request.args)
            if problem:
                raise BadRequest(problem)


def scrub_error(response: flask.Response) -> flask.Response:
    """MLflow's JSON error without SQL, and with the API reference's fields
    beside MLflow's (``detail``, ``error: {code, message}``, ``request_id``), as
    every Hokusai error has them."""
    if response.status_code < 400 or response.is_streamed:
        return response
    if response.mimetype != "application/json":
        return _as_json(response)
    try:
        body = json.loads(response.get_data())
    except (ValueError, RecursionError):
        return response
    if isinstance(body, dict) and isinstance(body.get("message"), str) and "detail" not in body:
        message = without_sql(body["message"])
        body = {"detail": message,
                "error": {"code": reference_code(response.status_code), "message": message},
                **body, "message": message}
        body.setdefault("request_id", request_id())
        response.set_data(json.dumps(body))
    return response


def _as_json(response: flask.Response) -> flask.Response:
    """An MLflow API route's text or HTML error answer, as a JSON one."""
    request = flask.request
    if (request.blueprint or "").startswith("hokusai") or not _API.search(request.path):
        return response
    text = " ".join(html.unescape(_TAG.sub(" ", response.get_data(as_text=True))).split())
    status, headers, body = render(FromMlflowText(response.status_code,
                                                  text[:1000] or response.status),
                                   request_id())
    response.set_data(body)
    response.headers.update(headers)
    return response


def init_app(flask_app: flask.Flask) -> None:
    # First of all the hooks: a body's shape is judged before anyone reads an id
    # from it (the permission check would otherwise answer "missing id").
    flask_app.before_request_funcs.setdefault(None, []).insert(0, check_body)
    flask_app.after_request(scrub_error)
