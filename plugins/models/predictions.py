"""Recorded inference operations, in Hokusai's database (``hokusai_predictions``).

Aggregates are computed by the database (counts per day, nearest-rank latency
percentiles with one ``ORDER BY ... OFFSET`` each), never by loading the rows.
"""

from __future__ import annotations

import datetime
import math

import sqlalchemy as sa

from mlflow_hokusai.db.schema import predictions as table

DAY_MS = 86_400_000
PERCENTILES = (50, 90, 95, 99)


def to_millis(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


def day_of(millis: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc).date()


def day_start(day: datetime.date) -> int:
    return to_millis(datetime.datetime.combine(day, datetime.time()))


class PredictionStore:
    def __init__(self, engine: sa.engine.Engine):
        self.engine = engine

    def record(self, name: str, version: int, rows: list[tuple[int, float | None]],
               recorded_by: str | None, connection=None) -> int:
        """Insert the rows, in the caller's transaction when it passes one."""
        if connection is None:
            with self.engine.begin() as connection:
                return self.record(name, version, rows, recorded_by, connection)
        connection.execute(table.insert(), [
            {"model_name": name, "model_version": version, "predicted_at": at,
             "latency_ms": latency, "recorded_by": recorded_by} for at, latency in rows])
        return len(rows)

    def delete(self, name: str, version: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(table.delete().where(*self._version(name, version)))

    @staticmethod
    def _version(name: str, version: int) -> list:
        return [table.c.model_name == name, table.c.model_version == version]

    def summary(self, name: str, version: int, start: datetime.date | None = None,
                end: datetime.date | None = None) -> dict:
        where = self._version(name, version)
        if start is not None:
            where.append(table.c.predicted_at >= day_start(start))
        if end is not None:
            where.append(table.c.predicted_at < day_start(end) + DAY_MS)
        day = (table.c.predicted_at - table.c.predicted_at % DAY_MS).label("day")
        with self.engine.connect() as connection:
            total, first, last = connection.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.predicted_at),
                          sa.func.max(table.c.predicted_at)).where(*where)).one()
            daily = connection.execute(
                sa.select(day, sa.func.count()).where(*where).group_by(day).order_by(day)).all()
            latency = self._latency(connection, where)
        return {"total_predictions": total,
                "first": first, "last": last,
                "daily_counts": [{"date": day_of(d), "count": n} for d, n in daily],
                "latency_ms": latency}

    @staticmethod
    def _latency(connection, where) -> dict:
        measured = [*where, table.c.latency_ms.is_not(None)]
        count, mean = connection.execute(
            sa.select(sa.func.count(), sa.func.avg(table.c.latency_ms)).where(*measured)).one()
        # Records are at most a day each (schemas); rows stored before that bound
        # could still average to infinity, which JSON cannot carry.
        mean = float(mean) if mean is not None else None
        result = {"count": count, "mean": mean if mean is None or math.isfinite(mean) else None}
        for p in PERCENTILES:
            value = None
            if count:
                rank = max(1, math.ceil(p / 100 * count))  # nearest-rank definition
                value = connection.execute(
                    sa.select(table.c.latency_ms).where(*measured)
                    .order_by(table.c.latency_ms).limit(1).offset(rank - 1)).scalar_one()
            result[f"p{p}"] = value
        return result
