"""``GET /api/audit``: the audit trail, newest first (``admin`` scope)."""

from __future__ import annotations

import base64
import datetime
import json

import flask
import sqlalchemy as sa

from mlflow_hokusai.db.schema import audit_log as A
from mlflow_hokusai.errors import BadRequest

blueprint = flask.Blueprint("hokusai_audit", __name__, url_prefix="/api/audit")

# Query parameters matched exactly against a column.
_EXACT = ("principal", "key_id", "experiment_id", "run_id", "model_name", "model_version",
          "api_key_id", "request_id")
_ALLOWED = {*_EXACT, "action", "status", "since", "until", "max_results", "page_token"}
DEFAULT_PAGE, MAX_PAGE = 100, 1000
_COLUMNS = [c for c in A.c if c.name != "id"]


_LAST_MS = int(datetime.datetime(9999, 12, 31, 23, 59, 59, 999000,
                                  tzinfo=datetime.timezone.utc).timestamp() * 1000)


def _time(name: str, raw: str) -> int:
    """Epoch milliseconds up to the year 9999 (the column is 64-bit), or an ISO
    8601 time (UTC unless it says otherwise)."""
    wrong = BadRequest(f"{name} must be epoch milliseconds or an ISO 8601 time, up to the "
                       "year 9999")
    if raw.isascii() and raw.isdigit():
        if len(raw) > 20 or int(raw) > _LAST_MS:
            raise wrong
        return int(raw)
    try:
        moment = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise wrong from None


def _int(name: str, raw: str, low: int, high: int) -> int:
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _page_token(raw: str) -> tuple[int, int]:
    try:
        time, row_id = json.loads(base64.urlsafe_b64decode(raw.encode()))
        if not (0 <= int(time) <= _LAST_MS and 0 <= int(row_id) < 2 ** 63):
            raise ValueError("out of range")
        return int(time), int(row_id)
    except (ValueError, TypeError):
        raise BadRequest("Invalid page_token") from None


def _encode(time: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([time, row_id]).encode()).decode()


def _filters(args) -> list:
    unknown = sorted(set(args) - _ALLOWED)
    if unknown:
        raise BadRequest(f"Unknown parameter(s): {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(_ALLOWED))}")
    clauses = [A.c[name] == args[name] for name in _EXACT if name in args]
    if "action" in args:  # actions are "METHOD /route/template": match any part
        pattern = args["action"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(A.c.action.like(f"%{pattern}%", escape="\\"))
    if "status" in args:
        clauses.append(A.c.status == _int("status", args["status"], 100, 599))
    if "since" in args:
        clauses.append(A.c.time >= _time("since", args["since"]))
    if "until" in args:
        clauses.append(A.c.time < _time("until", args["until"]))
    if "page_token" in args:
        time, row_id = _page_token(args["page_token"])
        clauses.append(sa.or_(A.c.time < time, sa.and_(A.c.time == time, A.c.id < row_id)))
    return clauses


@blueprint.get("")
def list_audit():
    args = flask.request.args.to_dict()
    limit = _int("max_results", args.get("max_results", str(DEFAULT_PAGE)), 1, MAX_PAGE)
    query = (sa.select(A).where(*_filters(args)).order_by(A.c.time.desc(), A.c.id.desc())
             .limit(limit + 1))
    engine = flask.current_app.extensions["hokusai"].engine
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    page = rows[:limit]
    return {"records": [{c.name: row[c.name] for c in _COLUMNS} | {"id": row["id"]}
                        for row in page],
            "next_page_token": _encode(page[-1]["time"], page[-1]["id"])
            if len(rows) > limit else None}
