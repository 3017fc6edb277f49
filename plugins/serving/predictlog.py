"""Every served prediction is recorded for the ``/models/{name}/{version}/
predictions`` statistics (plugins.models.predictions), and a sample of their
inputs and outputs (``HOKUSAI_PREDICTION_LOG_SAMPLE_RATE``) is kept in
``hokusai_prediction_samples``, which drift monitoring reads.

Writes are buffered and flushed by a thread once a ``period``, off the
prediction's path: a server worker killed hard loses at most that much.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time

from mlflow_hokusai.db.schema import prediction_samples as samples
from mlflow_hokusai.flusher import Flusher

_logger = logging.getLogger(__name__)
DAY_MS = 86_400_000


class PredictionLog:
    def __init__(self, predictions, engine, sample_rate: float, rng=random.random,
                 period: float = 1.0):
        self.predictions = predictions  # plugins.models.predictions.PredictionStore
        self.engine = engine
        self.sample_rate = sample_rate
        self.rng = rng
        self._lock = threading.Lock()
        self._records: dict[tuple[str, int, str | None], list] = {}
        self._samples: list[dict] = []
        self._flusher = Flusher(self.flush, period, "hokusai-prediction-log")

    def add(self, name: str, version: int, records: list, outputs: list, latency_ms: float,
            user: str | None) -> None:
        at = int(time.time() * 1000)
        with self._lock:
            self._records.setdefault((name, version, user), []).extend(
                (at, latency_ms) for _ in records)
            for record, output in zip(records, outputs, strict=False):
                if self.rng() < self.sample_rate:
                    self._samples.append({"model_name": name, "model_version": version,
                                          "sampled_at": at, "inputs": json.dumps(record),
                                          "outputs": json.dumps(output)})
            self._flusher.ensure_started()

    def flush(self) -> None:
        with self._lock:
            records, self._records = self._records, {}
            sampled, self._samples = self._samples, []
        try:
            # One transaction: whoever sees the counts also sees their samples.
            with self.engine.begin() as connection:
                for (name, version, user), rows in records.items():
                    self.predictions.record(name, version, rows, user, connection)
                if sampled:
                    connection.execute(samples.insert(), sampled)
        except Exception:  # statistics never fail a prediction
            _logger.exception("Could not write %d prediction records", len(records))

    def expire(self, retention_days: float, now_ms: int | None = None) -> int:
        """Delete samples past the retention; the supervisor runs it."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        cutoff = now_ms - int(retention_days * DAY_MS)
        with self.engine.begin() as connection:
            return connection.execute(
                samples.delete().where(samples.c.sampled_at < cutoff)).rowcount
