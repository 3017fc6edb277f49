"""``RestBlueprint``: a Flask blueprint whose operations are declared with pydantic
models, served under ``/api`` and at the root path, and described in OpenAPI.

    blueprint = RestBlueprint("hokusai_models", __name__, tag="models")

    @blueprint.operation("PATCH", "/models/<name>/<version>", path=VersionPath,
                         body=UpdateBody, response=ModelVersionOut, errors=(404,))
    def update(name: str, version: int, body: UpdateBody):
        return {...}   # a dict or a model; it is validated against ``response``

- ``path`` validates the URL variables (the view gets them typed, as keywords);
  ``query`` the query string (unknown parameters are ignored, as FastAPI does);
  ``body`` the JSON body (unknown fields are refused: ``BodyModel`` forbids them).
  Any failure is 422 ``{"detail": [{"loc", "msg", "type"}]}``, FastAPI's shape.
- A ``HokusaiError`` raised by a view is answered with its status and the one
  error body of mlflow_hokusai.errors (``detail``, ``error``, ``error_code``,
  ``message``); an ``MlflowException`` gets MLflow's status.
- A view may return a ``flask.Response`` (a stream, a redirect) when ``response``
  is a ``Raw`` media type.

Werkzeug matches static segments before variables, so ``/models/production``
wins over ``/models/<name>`` whatever the registration order.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import flask
import pydantic
from werkzeug.exceptions import HTTPException

from mlflow_hokusai.errors import FromHttp, FromMlflow, HokusaiError, ValidationFailed
from mlflow_hokusai.values import UNSTORABLE_MESSAGE, unstorable_text
from mlflow_hokusai.web import error_response, json_body_bytes

_logger = logging.getLogger(__name__)
API_PREFIX = "/api"


class BodyModel(pydantic.BaseModel):
    """Base of request bodies: an unknown field is an error, not a silently
    ignored option."""

    model_config = pydantic.ConfigDict(extra="forbid")


class QueryModel(pydantic.BaseModel):
    """Base of query-string and path models (extra parameters are ignored)."""

    model_config = pydantic.ConfigDict(extra="ignore")


@dataclasses.dataclass(frozen=True)
class Raw:
    """A response that is not JSON: its media type and what it is."""

    media_type: str
    description: str
    status: int = 200


@dataclasses.dataclass(frozen=True)
class Operation:
    """One documented operation; ``rules`` are the URL rules it is served at."""

    method: str
    path: str
    rules: tuple[str, ...]
    endpoint: str
    summary: str
    path_model: type[pydantic.BaseModel] | None
    query: type[pydantic.BaseModel] | None
    body: type[pydantic.BaseModel] | None
    response: type[pydantic.BaseModel] | Raw | None
    status: int
    errors: tuple[int, ...]
    direct: bool = False  # served straight from the ASGI adapter (mlflow_hokusai.direct)


def _issues(error: pydantic.ValidationError, where: str) -> list[dict[str, Any]]:
    # Only loc, msg and type: pydantic's "input" could echo a secret back.
    return [{"loc": [where, *item["loc"]], "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False)]


def _validate(model, data, where: str):
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationFailed(_issues(error, where)) from None


def _json_body() -> Any:
    raw = json_body_bytes()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ValidationFailed([{"loc": ["body"], "msg": f"JSON decode error: {error}",
                                 "type": "json_invalid"}]) from None
    where = unstorable_text(body)
    if where is not None:
        raise ValidationFailed([{"loc": ["body", *where], "msg": f"Text {UNSTORABLE_MESSAGE}",
                                 "type": "value_error"}])
    return body


def _query_args() -> dict[str, Any]:
    args = flask.request.args
    return {key: values if len(values) > 1 else values[0]
            for key, values in args.lists()}


def unexpected_error(error: Exception) -> flask.Response:
    """Any other exception, as JSON: MLflow's with MLflow's status, Werkzeug's
    with its own, anything else a 500 that names only the request id (the log
    has the traceback)."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        return error_response(FromMlflow(error))
    if isinstance(error, HTTPException):  # abort(), body too large, ...
        return error_response(FromHttp(error))
    # Flask calls error handlers inside its own except block: the traceback is there.
    _logger.exception(  # noqa: LOG004
        "Unexpected error in %s %s", flask.request.method, flask.request.path)
    return error_response(HokusaiError())


class RestBlueprint(flask.Blueprint):
    def __init__(self, name: str, import_name: str, *, tag: str | None = None):
        super().__init__(name, import_name)
        self.tag = tag or name
        self.operations: list[Operation] = []
        self.register_error_handler(HokusaiError, error_response)
        self.register_error_handler(Exception, unexpected_error)

    def operation(self, method: str, path: str, *, path_model=None, query=None, body=None,
                  response=None, status: int = 200, errors: tuple[int, ...] = (),
                  summary: str | None = None, api_only: bool = False,
                  direct: bool = False) -> Callable:
        """Serve the view at ``/api<path>`` and ``<path>`` (only the first with
        ``api_only``). ``direct``: a hot operation answering buffered JSON, which
        under uvicorn skips MLflow's FastAPI app (mlflow_hokusai.direct)."""
        method = method.upper()

        def decorate(view):
            endpoint = f"{view.__name__}_{method.lower()}"
            rules = (API_PREFIX + path,) if api_only else (API_PREFIX + path, path)
            wrapped = self._wrap(view, path_model, query, body, response, status)
            for rule in rules:
                # "/models" answers as "/models/" does, not with a 308 redirect.
                self.add_url_rule(rule, endpoint=endpoint, view_func=wrapped, methods=[method],
                                  strict_slashes=not rule.endswith("/"))
            self.operations.append(Operation(
                method, path, tuple(rules), f"{self.name}.{endpoint}",
                summary or (view.__doc__ or view.__name__).strip().split("\n")[0],
                path_model, query, body, response, status, tuple(errors), direct))
            return view

        return decorate

    @staticmethod
    def _wrap(view, path_model, query, body, response, status):
        @functools.wraps(view)
        def wrapped(**view_args):
            kwargs = dict(view_args)
            if path_model is not None:
                kwargs = dict(_validate(path_model, view_args, "path"))
            if query is not None:
                kwargs["query"] = _validate(query, _query_args(), "query")
            if body is not None:
                kwargs["body"] = _validate(body, _json_body(), "body")
            result = view(**kwargs)
            if isinstance(result, flask.Response):
                return result
            if isinstance(response, type) and issubclass(response, pydantic.BaseModel):
                if not isinstance(result, response):
                    result = response.model_validate(result)
                return flask.jsonify(result.model_dump(mode="json")), status
            return flask.jsonify(result), status

        return wrapped


def rest_blueprints(flask_app) -> list[RestBlueprint]:
    return [bp for bp in flask_app.blueprints.values() if isinstance(bp, RestBlueprint)]


def direct_endpoints(flask_app) -> frozenset[str]:
    return frozenset(op.endpoint for bp in rest_blueprints(flask_app)
                     for op in bp.operations if op.direct)
