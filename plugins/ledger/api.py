"""``GET /api/ledger?token_id=&since=&limit=`` (admin): ledger entries after
sequence number ``since`` (default 0), oldest first, as JSON lines
(``application/x-ndjson``), at most ``limit`` (default and maximum 1000). When
more follow, the ``Hokusai-Next-Since`` header holds the ``since`` of the next page."""

from __future__ import annotations

import json

import flask

from mlflow_hokusai.errors import BadRequest
from mlflow_hokusai.plugins.ledger.chain import as_json
from mlflow_hokusai.plugins.store.tags import valid_token_id

blueprint = flask.Blueprint("hokusai_ledger", __name__, url_prefix="/api/ledger")
PAGE = 1000


def _integer(name: str, default: int, low: int, high: int) -> int:
    raw = flask.request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18 and low <= int(raw) <= high):
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}")
    return int(raw)


@blueprint.get("")
def entries():
    unknown = sorted(set(flask.request.args) - {"token_id", "since", "limit"})
    if unknown:
        raise BadRequest(f"Unknown parameter(s): {', '.join(unknown)}")
    token_id = flask.request.args.get("token_id")
    if token_id is not None and not valid_token_id(token_id):
        raise BadRequest("'token_id' must be 1-64 letters, digits and hyphens")
    since, limit = _integer("since", 0, 0, 2 ** 62), _integer("limit", PAGE, 1, PAGE)
    rows = flask.current_app.extensions["hokusai"].ledger.entries(
        token_id=token_id, since=since, limit=limit + 1)
    body = "".join(json.dumps(as_json(row), sort_keys=True) + "\n" for row in rows[:limit])
    response = flask.Response(body, mimetype="application/x-ndjson")
    if len(rows) > limit:
        response.headers["Hokusai-Next-Since"] = str(rows[limit - 1]["seq"])
    return response
