"""Every prediction request to a deployment (``hokusai_monitored_predictions``):
when, how long, whether it failed, what it predicted, and the ground truth
posted back for it. The performance report reads them.

Rows arrive through the ``prediction_served`` signal and are written by a
thread once a ``period``, off the prediction's path (as plugins.serving's
prediction log): a request's feedback can be refused as unknown for that long.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import sqlalchemy as sa

from mlflow_hokusai.db.schema import monitored_predictions as table
from mlflow_hokusai.flusher import Flusher

_logger = logging.getLogger(__name__)
THREAD_NAME = "hokusai-monitoring"  # plugins.health's breaker ignores its statements
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


class Outcomes:
    def __init__(self, engine, period: float = 1.0):
        self.engine = engine
        self._lock = threading.Lock()
        self._rows: list[dict] = []
        self._flusher = Flusher(self.flush, period, THREAD_NAME)

    def on_prediction(self, sender, model_name, version, request_id, records, predictions,
                      latency_ms, error, user) -> None:
        row = {"request_id": request_id, "model_name": model_name, "model_version": version,
               "predicted_at": now_ms(), "latency_ms": latency_ms, "records": records,
               "error": error, "recorded_by": user,
               "predictions": None if predictions is None else json.dumps(predictions)}
        with self._lock:
            self._rows.append(row)
            self._flusher.ensure_started()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            with self.engine.begin() as connection:
                connection.execute(table.insert(), rows)
        except Exception:  # monitoring never fails a prediction
            _logger.exception("Could not record %d monitored predictions", len(rows))

    def find(self, request_id: str):
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(table).where(table.c.request_id == request_id)
                .order_by(table.c.id.desc()).limit(1)).first()

    def set_truth(self, row_id: int, truth: list, by: str | None) -> None:
        with self.engine.begin() as connection:
            connection.execute(table.update().where(table.c.id == row_id).values(
                truth=json.dumps(truth), feedback_at=now_ms(), feedback_by=by))

    def expire(self, retention_days: float) -> int:
        cutoff = now_ms() - int(retention_days * DAY_MS)
        with self.engine.begin() as connection:
            return connection.execute(
                table.delete().where(table.c.predicted_at < cutoff)).rowcount
