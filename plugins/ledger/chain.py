"""The hash-chained contribution ledger (``hokusai_ledger``).

Entry n holds ``hash = SHA-256(canonical JSON of {seq, recorded_at, event,
token_id, model_name, version, principal, data, prev_hash})`` where
``prev_hash`` is entry n-1's hash (64 zeros for the first) and ``data`` is the
event's details as canonical JSON text, hashed exactly as stored. Canonical
JSON: keys sorted, no spaces, ASCII only. Editing any field of any entry, or
removing or reordering entries, breaks the chain at that entry.

Appends are serialized: on PostgreSQL by a transaction-scoped advisory lock;
everywhere by ``seq`` being the primary key (an append that lost the race to
the same ``seq`` retries on the new tip).
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from mlflow_hokusai.db.schema import ledger as LG

GENESIS = "0" * 64
FIELDS = ("seq", "recorded_at", "event", "token_id", "model_name", "version", "principal",
          "data", "prev_hash")
_LOCK_ID = zlib.crc32(b"mlflow-hokusai-ledger")
_ATTEMPTS = 20


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({name: entry[name] for name in FIELDS}).encode()).hexdigest()


def _millis() -> int:
    return int(time.time() * 1000)


class Ledger:
    def __init__(self, engine, clock: Callable[[], int] = _millis):
        self.engine = engine
        self.clock = clock

    def append(self, event: str, *, token_id=None, model_name=None, version=None,
               principal=None, data=None) -> dict:
        fields = {"event": event, "token_id": token_id, "model_name": model_name,
                  "version": None if version is None else int(version),
                  "principal": principal, "data": canonical(data or {})}
        for attempt in range(_ATTEMPTS):
            try:
                return self._append_once(fields)
            except sa.exc.IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _append_once(self, fields: dict) -> dict:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"),
                                   {"id": _LOCK_ID})
            tip = connection.execute(sa.select(LG.c.seq, LG.c.hash)
                                     .order_by(LG.c.seq.desc()).limit(1)).first()
            entry = {**fields, "seq": tip.seq + 1 if tip else 1,
                     "recorded_at": self.clock(), "prev_hash": tip.hash if tip else GENESIS}
            entry["hash"] = entry_hash(entry)
            connection.execute(LG.insert().values(**entry))
        return entry

    def entries(self, *, token_id: str | None = None, since: int = 0,
                limit: int | None = None) -> list[dict]:
        """Entries after sequence number ``since``, oldest first (a token's only,
        matched case-insensitively as tokens are)."""
        query = sa.select(LG).where(LG.c.seq > since).order_by(LG.c.seq)
        if token_id is not None:
            query = query.where(sa.func.lower(LG.c.token_id) == token_id.lower())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def walk(self, batch: int = 1000) -> Iterator[dict]:
        since = 0
        while True:
            rows = self.entries(since=since, limit=batch)
            yield from rows
            if len(rows) < batch:
                return
            since = rows[-1]["seq"]

    def verify(self) -> tuple[int, dict | None]:
        """(entries checked, the first broken one with ``problem``) over the whole chain."""
        previous, expected_seq, count = GENESIS, 1, 0
        for entry in self.walk():
            problem = None
            if entry["seq"] != expected_seq:
                problem = f"expected entry {expected_seq} here (entries missing)"
            elif entry["prev_hash"] != previous:
                problem = "prev_hash is not the previous entry's hash"
            elif entry_hash(entry) != entry["hash"]:
                problem = "its fields do not hash to its stored hash (edited)"
            if problem:
                return count, {**entry, "problem": problem}
            previous, expected_seq, count = entry["hash"], expected_seq + 1, count + 1
        return count, None


def as_json(entry: dict) -> dict:
    """An entry as the API and exports give it: ``data`` parsed, the rest as stored."""
    return {**entry, "data": json.loads(entry["data"])}
