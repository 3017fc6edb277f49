"""Writes audit records from a background thread, in batches.

Requests only enqueue (the ASGI server's event loop must not wait on the
database); the thread inserts what has queued in one transaction and retries
with backoff while the database is down. Records beyond the queue's capacity
are dropped and counted, never blocking a request. Queued records are flushed
when the worker exits normally.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time

from mlflow_hokusai import signals
from mlflow_hokusai.db.schema import audit_log

_logger = logging.getLogger(__name__)
_BATCH = 500
_LINGER_SECONDS = 0.2
_RETRIES = (0.2, 0.5, 1.0, 2.0, 5.0)
_STOP = object()


_COLUMNS = [column for column in audit_log.c if column.name != "id"]


def _fit(row: dict) -> dict:
    """Every column (a batch is one executemany: all rows need the same keys),
    strings cut to their column's length: ids come from clients, and one
    overlong value must not lose its whole batch."""
    fitted = {}
    for column in _COLUMNS:
        value = row.get(column.name)
        length = getattr(column.type, "length", None)
        fitted[column.name] = value[:length] if isinstance(value, str) and length else value
    return fitted


class AuditRecorder:
    def __init__(self, engine, capacity: int):
        self._engine = engine
        self._queue: queue.Queue = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="hokusai-audit", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(self, row: dict) -> None:
        try:
            self._queue.put_nowait(_fit(row))
        except queue.Full:
            self._dropped(1, "the audit queue is full")

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Gather what arrives shortly after: one transaction for a burst of
            # writes costs the database (and the worker's CPU) far less than one
            # per write.
            deadline = time.monotonic() + _LINGER_SECONDS
            while len(batch) < _BATCH and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            stop = _STOP in batch
            self._write([row for row in batch if row is not _STOP])
            if stop:
                return

    def _write(self, rows: list[dict]) -> None:
        if not rows:
            return
        for pause in (*_RETRIES, None):
            try:
                with self._engine.begin() as connection:
                    connection.execute(audit_log.insert(), rows)
                return
            except Exception as error:  # noqa: BLE001 - any database failure is retried
                if pause is None:
                    self._dropped(len(rows), f"the database refused them ({type(error).__name__})")
                    return
                time.sleep(pause)

    @staticmethod
    def _dropped(count: int, why: str) -> None:
        _logger.error("%d audit record(s) dropped: %s", count, why)
        signals.audit_dropped.send(None, count=count)
