"""The performance report of a model over a window: requests, error rate,
latency percentiles, throughput per hour, and the accuracy (classification) or
MAE/RMSE (regression) of the predictions whose ground truth was posted.

Counts and percentiles are computed by the database (nearest rank, one
``ORDER BY ... OFFSET`` each); only labelled predictions are loaded, at most
``max_rows`` of them (the newest).
"""

from __future__ import annotations

import json
import math
import numbers

import numpy as np
import sqlalchemy as sa

from mlflow_hokusai.db.schema import monitored_predictions as table

HOUR_MS = 3_600_000
PERCENTILES = (50, 90, 95, 99)


def _numeric(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _integral(value) -> bool:
    return _numeric(value) and float(value).is_integer()


def _same(predicted, truth) -> bool:
    if _numeric(predicted) and _numeric(truth):
        return float(predicted) == float(truth)
    return str(predicted) == str(truth)


def quality(pairs: list[tuple]) -> dict:
    """Classification when every true value is a label (text, boolean or a whole
    number predicted as a whole number), regression otherwise."""
    if not pairs:
        return {"task": None, "labelled": 0}
    regression = any(_numeric(t) for _, t in pairs) and not all(
        _integral(p) and _integral(t) for p, t in pairs)
    if not regression:
        correct = sum(_same(p, t) for p, t in pairs)
        return {"task": "classification", "labelled": len(pairs),
                "accuracy": correct / len(pairs)}
    usable = [(float(p), float(t)) for p, t in pairs if _numeric(p) and _numeric(t)]
    if not usable:
        return {"task": "regression", "labelled": 0}
    predicted, truth = np.array(usable).T
    error = predicted - truth
    return {"task": "regression", "labelled": len(usable),
            "mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2)))}


def _pairs(predictions: str | None, truth: str | None) -> list[tuple]:
    predicted, true = json.loads(predictions or "null"), json.loads(truth or "null")
    if not isinstance(predicted, list) or not isinstance(true, list):
        return []
    pairs = zip(predicted, true, strict=False)
    return [(p, t) for p, t in pairs if not isinstance(p, (dict, list))]


def _latency(connection, where) -> dict:
    measured = [*where, table.c.error.is_(None), table.c.latency_ms.is_not(None)]
    count, mean = connection.execute(
        sa.select(sa.func.count(), sa.func.avg(table.c.latency_ms)).where(*measured)).one()
    result = {"count": count, "mean": float(mean) if mean is not None else None}
    for p in PERCENTILES:
        result[f"p{p}"] = None if not count else connection.execute(
            sa.select(table.c.latency_ms).where(*measured).order_by(table.c.latency_ms)
            .limit(1).offset(max(1, math.ceil(p / 100 * count)) - 1)).scalar_one()
    return result


def report(engine, name: str, version: int | None, since_ms: int, until_ms: int,
           max_rows: int) -> dict:
    where = [table.c.model_name == name, table.c.predicted_at >= since_ms,
             table.c.predicted_at < until_ms]
    if version is not None:
        where.append(table.c.model_version == version)
    failed = sa.func.sum(sa.case((table.c.error.is_not(None), 1), else_=0))
    hour = (table.c.predicted_at - table.c.predicted_at % HOUR_MS).label("hour")
    with engine.connect() as connection:
        total, errors, records = connection.execute(
            sa.select(sa.func.count(), failed, sa.func.sum(table.c.records)).where(*where)).one()
        hourly = connection.execute(sa.select(hour, sa.func.count(), failed).where(*where)
                                    .group_by(hour).order_by(hour)).all()
        latency = _latency(connection, where)
        labelled = connection.execute(
            sa.select(table.c.predicted_at, table.c.predictions, table.c.truth)
            .where(*where, table.c.truth.is_not(None)).order_by(table.c.id.desc())
            .limit(max_rows)).all()
    by_hour: dict[int, list] = {}
    for at, predictions, truth in labelled:
        by_hour.setdefault(at - at % HOUR_MS, []).extend(_pairs(predictions, truth))
    hours = (until_ms - since_ms) / HOUR_MS
    return {
        "requests": total, "records": int(records or 0), "errors": int(errors or 0),
        "error_rate": (int(errors or 0) / total) if total else None,
        "throughput_per_hour": total / hours if hours else None,
        "latency_ms": latency,
        "hourly": [{"hour": h, "requests": n, "errors": int(e or 0),
                    "quality": quality(by_hour.get(h, []))} for h, n, e in hourly],
        "quality": quality([pair for pairs in by_hour.values() for pair in pairs]),
    }
