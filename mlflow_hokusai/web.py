"""Small Flask helpers shared by every Hokusai blueprint."""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet

import flask

from mlflow_hokusai.errors import BadRequest, HokusaiError, UnsupportedMediaType, render
from mlflow_hokusai.pipeline import current_context
from mlflow_hokusai.values import UNSTORABLE_MESSAGE, unstorable_text


def request_id() -> str | None:
    context = current_context.get()
    return context.request_id if context else flask.request.headers.get("X-Request-ID")


def error_response(error: HokusaiError) -> flask.Response:
    status, headers, body = render(error, request_id())
    return flask.Response(body, status=status, headers=headers)


def json_body_bytes() -> bytes:
    """The request body, which must say it is JSON when there is one: a form or
    a ``text/plain`` post is what a page of another site can send without
    asking, so a JSON route never reads one."""
    raw = flask.request.get_data(cache=True)
    if raw.strip() and not flask.request.is_json:
        raise UnsupportedMediaType()
    return raw


def json_object(*, allowed: AbstractSet[str], required: AbstractSet[str] = frozenset()) -> dict:
    """The request's JSON object; unknown fields are refused so that a typo is
    an error, not a silently ignored option."""
    raw = json_body_bytes()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    where = unstorable_text(body)
    if where is not None:
        raise BadRequest(f"Field {'.'.join(map(str, where))}: text {UNSTORABLE_MESSAGE}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(allowed))}")
    missing = sorted(required - set(body))
    if missing:
        raise BadRequest(f"Missing required field(s): {', '.join(missing)}")
    return body
