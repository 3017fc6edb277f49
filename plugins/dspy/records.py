"""Execution records (``hokusai_dspy_executions``): every run of a program,
with its inputs, outputs, error, timing, version and principal; the
statistics are computed from them, so every server worker reports the same."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import sqlalchemy as sa

from mlflow_hokusai.db.schema import dspy_executions as table


@dataclasses.dataclass
class Execution:
    id: str
    model_name: str
    version: int
    mode: str
    success: bool
    inputs: dict
    outputs: dict | None
    error: str | None
    execution_time: float
    principal: str | None
    batch_id: str | None = None
    trace_id: str | None = None
    created_at: int = 0


def new_id() -> str:
    return uuid.uuid4().hex


EXPIRY_INTERVAL_SECONDS = 3600.0  # hourly is plenty for a retention in days


class ExecutionStore:
    def __init__(self, engine: sa.engine.Engine, retention_days: float):
        self.engine = engine
        self.retention_days = retention_days
        self.expired_at = 0.0

    def add(self, execution: Execution) -> None:
        if time.monotonic() - self.expired_at > EXPIRY_INTERVAL_SECONDS:
            self.expired_at = time.monotonic()
            self.expire(self.retention_days)
        execution.created_at = execution.created_at or int(time.time() * 1000)
        row = dataclasses.asdict(execution)
        row["inputs"] = json.dumps(execution.inputs, default=str)
        row["outputs"] = None if execution.outputs is None else json.dumps(execution.outputs,
                                                                            default=str)
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(**row))

    def get(self, execution_id: str) -> Execution | None:
        with self.engine.connect() as connection:
            row = connection.execute(table.select().where(table.c.id == execution_id)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["inputs"] = json.loads(data["inputs"])
        data["outputs"] = None if data["outputs"] is None else json.loads(data["outputs"])
        return Execution(**data)

    def statistics(self) -> dict:
        query = sa.select(sa.func.count(), sa.func.sum(sa.case((table.c.success, 1), else_=0)),
                          sa.func.avg(table.c.execution_time))
        with self.engine.connect() as connection:
            total, successes, average = connection.execute(query).one()
        return {"total_executions": total,
                "success_rate": (successes or 0) / total if total else 0.0,
                "average_execution_time": float(average or 0.0)}

    def expire(self, retention_days: float, now: float | None = None) -> int:
        cutoff = int(((now or time.time()) - retention_days * 86400) * 1000)
        with self.engine.begin() as connection:
            return connection.execute(table.delete().where(table.c.created_at < cutoff)).rowcount
