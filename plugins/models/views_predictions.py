"""Recorded inference operations of a version (as an external serving system
would report them), and their statistics."""

from __future__ import annotations

import time

from mlflow_hokusai.plugins.models import predictions, registry, schemas
from mlflow_hokusai.plugins.models.blueprint import acting_user, blueprint, hokusai


@blueprint.operation("POST", "/models/<name>/<version>/predictions",
                     path_model=schemas.VersionPath, body=schemas.RecordBody,
                     response=schemas.Recorded, status=201, errors=(404,))
def record_predictions(name: str, version: int, body: schemas.RecordBody):
    """Record inference operations (up to 1000 per request)."""
    registry.get_version(name, version)
    now = int(time.time() * 1000)
    rows = [(predictions.to_millis(p.timestamp) if p.timestamp else now, p.latency_ms)
            for p in body.predictions]
    return {"recorded": hokusai().predictions.record(name, version, rows, acting_user())}


@blueprint.operation("GET", "/models/<name>/<version>/predictions",
                     path_model=schemas.VersionPath, query=schemas.PredictionsQuery,
                     response=schemas.PredictionStats, errors=(404,))
def prediction_stats(name: str, version: int, query: schemas.PredictionsQuery):
    """Prediction counts per day (UTC) and latency percentiles (nearest rank)."""
    registry.get_version(name, version)
    summary = hokusai().predictions.summary(name, version, query.start, query.end)
    first, last = summary["first"], summary["last"]
    return {"total_predictions": summary["total_predictions"],
            "date_range": {"start": predictions.day_of(first) if first is not None else None,
                           "end": predictions.day_of(last) if last is not None else None},
            "daily_counts": summary["daily_counts"], "latency_ms": summary["latency_ms"]}
