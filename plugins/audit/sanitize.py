"""Make an audit record storable whatever a client put in it.

Ids in a record come from request paths, queries and bodies. A value the
database refuses (a lone UTF-16 surrogate, which no driver can encode; a NUL
byte, which PostgreSQL text cannot hold; a value longer than its column) must
cost at most that value, never the record or its batch. ``storable`` keeps the
text readable (each bad character becomes U+FFFD); ``strict`` is the last
resort when a database still refuses a record: printable ASCII only, with
escapes.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from mlflow_hokusai.db.schema import audit_log

COLUMNS = [column for column in audit_log.c if column.name != "id"]
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_BIGINT = 2 ** 63 - 1
# Required columns get a placeholder rather than losing the record.
_MISSING = {"time": 0, "request_id": "-", "action": "-", "path": "-", "status": 0}


def _text(value, length: int | None, clean) -> str | None:
    if value is None:
        return None
    text = clean(value if isinstance(value, str) else str(value))
    return text[:length] if length else text


def _number(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -_BIGINT <= number <= _BIGINT else None


def _fit(row: dict, clean) -> dict:
    """Every column (a batch is one executemany: all rows need the same keys)."""
    fitted = {}
    for column in COLUMNS:
        value = row.get(column.name)
        if isinstance(column.type, sa.Integer):
            value = _number(value)
        else:
            value = _text(value, getattr(column.type, "length", None), clean)
        fitted[column.name] = _MISSING.get(column.name) if value is None else value
    return fitted


def storable(row: dict) -> dict:
    return _fit(row, lambda text: _UNSTORABLE.sub("\ufffd", text))


def strict(row: dict) -> dict:
    return _fit(row, lambda text: text.encode("ascii", "backslashreplace").decode("ascii")
                .replace("\x00", "\\x00"))
