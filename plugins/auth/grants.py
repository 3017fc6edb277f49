"""Grants: a principal's permission on one experiment or registered model, per
workspace ("" when workspaces are off), in ``hokusai_grants``.

Each worker trusts what it read for at most ``HOKUSAI_KEY_CACHE_TTL_SECONDS``
(<= 1 s), as it does keys: a revocation reaches every worker within a second,
with no messaging between them.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from mlflow_hokusai.db import model_rows
from mlflow_hokusai.db.schema import grants as G
from mlflow_hokusai.plugins.auth.ttlcache import TtlCache

RESOURCE_TYPES = ("experiment", "registered_model")
GRANTABLE = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")


class Grants:
    def __init__(self, engine, ttl_seconds: float):
        self.engine = engine
        self._cache = TtlCache(ttl_seconds)
        self._by_principal = TtlCache(ttl_seconds)

    def _key(self, workspace, resource_type, resource_id, principal):
        return (G.c.workspace == workspace, G.c.resource_type == resource_type,
                G.c.resource_id == str(resource_id), G.c.principal == principal)

    def permission(self, workspace: str, resource_type: str, resource_id: str,
                   principal: str) -> str | None:
        key = (workspace, resource_type, str(resource_id), principal)
        found, value = self._cache.get(key)
        if found:
            return value
        with self.engine.connect() as connection:
            value = connection.execute(sa.select(G.c.permission).where(
                *self._key(workspace, resource_type, resource_id, principal))).scalar()
        self._cache.put(key, value)
        return value

    def cached_permission(self, workspace: str, resource_type: str, resource_id: str,
                          principal: str) -> tuple[bool, str | None]:
        """(found, permission) as this worker last read it, without the database."""
        return self._cache.get((workspace, resource_type, str(resource_id), principal))

    def of_principal(self, principal: str, resource_type: str,
                     workspace: str = "") -> list[tuple[str, str]]:
        """(resource id, permission) of every grant a principal holds (searches)."""
        key = (workspace, resource_type, principal)
        found, rows = self._by_principal.get(key)
        if not found:
            with self.engine.connect() as connection:
                rows = [tuple(row) for row in connection.execute(
                    sa.select(G.c.resource_id, G.c.permission).where(
                        G.c.workspace == workspace, G.c.resource_type == resource_type,
                        G.c.principal == principal))]
            self._by_principal.put(key, rows)
        return rows

    def grant(self, workspace: str, resource_type: str, resource_id: str, principal: str,
              permission: str, granted_by: str | None) -> dict:
        row = {"workspace": workspace, "resource_type": resource_type,
               "resource_id": str(resource_id), "principal": principal,
               "permission": permission, "granted_by": granted_by,
               "granted_at": int(time.time() * 1000)}
        with self.engine.begin() as connection:
            # Portable upsert: the primary key makes a racing second insert fail
            # rather than duplicate.
            connection.execute(G.delete().where(
                *self._key(workspace, resource_type, resource_id, principal)))
            connection.execute(G.insert().values(**row))
        self._forget(workspace, resource_type, resource_id, principal)
        return row

    def revoke(self, workspace: str, resource_type: str, resource_id: str,
               principal: str) -> bool:
        with self.engine.begin() as connection:
            gone = connection.execute(G.delete().where(
                *self._key(workspace, resource_type, resource_id, principal))).rowcount
        self._forget(workspace, resource_type, resource_id, principal)
        return bool(gone)

    def _forget(self, workspace, resource_type, resource_id, principal) -> None:
        # This worker at once; the others within their TTL.
        self._cache.drop((workspace, resource_type, str(resource_id), principal))
        self._by_principal.drop((workspace, resource_type, principal))

    def rename(self, connection, workspace: str, resource_type: str, old_id, new_id) -> None:
        """Move a resource's grants to its new id, or drop them (``new_id`` None),
        in ``connection``'s transaction; call ``forget_all`` once it commits."""
        model_rows.move(connection, G, G.c.resource_id, str(old_id),
                        str(new_id) if new_id else None,
                        G.c.workspace == workspace, G.c.resource_type == resource_type)

    def forget_all(self) -> None:
        self._cache.clear()
        self._by_principal.clear()

    def list(self, workspace: str, *, resource_type: str | None = None,
             resource_id: str | None = None, principal: str | None = None) -> list[dict]:
        query = sa.select(G).where(G.c.workspace == workspace)
        for column, value in ((G.c.resource_type, resource_type),
                              (G.c.resource_id, resource_id), (G.c.principal, principal)):
            if value is not None:
                query = query.where(column == str(value))
        query = query.order_by(G.c.resource_type, G.c.resource_id, G.c.principal)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]
