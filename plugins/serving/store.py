"""Deployment rows (``hokusai_deployments``): what every server worker knows
about a deployment. The supervisor writes status, endpoints and signature; the
API writes the rest."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import uuid
from typing import Any

import sqlalchemy as sa

from mlflow_hokusai.db.schema import deployments as table

STARTING, READY, FAILED = "starting", "ready", "failed"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclasses.dataclass(frozen=True)
class Deployment:
    id: str
    model_name: str
    version: int | None
    alias: str | None
    resolved_version: int | None
    replicas: int
    status: str
    reason: str | None
    endpoints: str | None
    signature: str | None
    reference_dataset: str | None
    restarts: int
    created_by: str | None
    created_at: int
    updated_at: int

    @property
    def addresses(self) -> list[str]:
        return [e for e in (self.endpoints or "").split(",") if e]

    @functools.cached_property  # parsed once per row: a remembered row serves many calls
    def columns(self) -> list[dict] | None:
        return json.loads(self.signature) if self.signature else None

    @property
    def target(self) -> str:
        return f"@{self.alias}" if self.alias else str(self.version)


class DeploymentStore:
    def __init__(self, engine: sa.engine.Engine):
        self.engine = engine

    def create(self, model_name: str, version: int | None, alias: str | None, replicas: int,
               reference_dataset: str | None, created_by: str | None) -> Deployment:
        at = now_ms()
        row: dict[str, Any] = {"id": uuid.uuid4().hex, "model_name": model_name, "version": version,
               "alias": alias, "resolved_version": None, "replicas": replicas,
                               "status": STARTING, "reason": None, "endpoints": None,
                               "signature": None, "reference_dataset": reference_dataset,
                               "restarts": 0, "created_by": created_by, "created_at": at,
                               "updated_at": at}
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(**row))
        return Deployment(**row)

    def get(self, deployment_id: str) -> Deployment | None:
        with self.engine.connect() as connection:
            row = connection.execute(table.select().where(table.c.id == deployment_id)).first()
        return Deployment(**row._mapping) if row else None

    def list(self, model_name: str | None = None) -> list[Deployment]:
        query = table.select().order_by(table.c.created_at, table.c.id)
        if model_name is not None:
            query = query.where(table.c.model_name == model_name)
        with self.engine.connect() as connection:
            return [Deployment(**row._mapping) for row in connection.execute(query)]

    def update(self, deployment_id: str, **values) -> None:
        with self.engine.begin() as connection:
            connection.execute(table.update().where(table.c.id == deployment_id)
                               .values(updated_at=now_ms(), **values))

    def delete(self, deployment_id: str) -> bool:
        with self.engine.begin() as connection:
            return connection.execute(
                table.delete().where(table.c.id == deployment_id)).rowcount > 0
