"""Upkeep of the registry index, called by the registry store inside MLflow's
own write transactions (see transactions.py).

Each method gets MLflow's session and writes on its connection, so everything
commits or rolls back with MLflow's change. Values arrive parsed (tags.py); the
checks that need the database (token bindings, parent versions) raise here,
which rolls MLflow's write back too. Writes stay a statement or two: what can
be derived when read (a contribution's baseline and improvement, a run's
experiment) is derived when read (contributions.py, reader.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
from mlflow.utils.time import get_current_time_millis

from mlflow_hokusai.db.schema import model_versions as V
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.db.schema import tokens as T
from mlflow_hokusai.plugins.store import tags
from mlflow_hokusai.plugins.store.owners import Owner
from mlflow_hokusai.plugins.store.sql import first, insert_ignoring_conflicts

_COLUMN = {tags.BENCHMARK_METRIC: "benchmark_metric", tags.BENCHMARK_VALUE: "benchmark_value",
           tags.BENCHMARK_DIRECTION: "benchmark_direction"}


def _tag_columns(key: str, value) -> dict:
    if key == tags.TOKEN_ID:
        return {"token_id": value, "token_key": value.lower() if value else None}
    if key == tags.CONTRIBUTOR:
        # The same contributor again keeps the time it was first credited.
        credited = sa.case((V.c.contributor == value, V.c.contributed_at),
                           else_=get_current_time_millis()) if value else None
        return {"contributor": value, "contributed_at": credited}
    return {_COLUMN[key]: value}


def _version_key(name: str, version: int):
    return sa.and_(V.c.model_name == name, V.c.version == version)


class RegistryIndex:
    # -- registered models ---------------------------------------------------
    def model_created(self, session, name: str, created_at: int, model_tags: dict,
                      owner: Owner) -> None:
        session.connection().execute(M.insert().values(
            name=name, created_at=created_at,
            benchmark_direction=model_tags.get(tags.BENCHMARK_DIRECTION), **owner.columns()))

    def model_renamed(self, session, name: str, new_name: str) -> None:
        for table, column in ((V, V.c.model_name), (T, T.c.model_name), (M, M.c.name)):
            session.connection().execute(
                table.update().where(column == name).values({column.name: new_name}))

    def model_deleted(self, session, name: str) -> None:
        for table, column in ((V, V.c.model_name), (T, T.c.model_name), (M, M.c.name)):
            session.connection().execute(table.delete().where(column == name))

    def model_direction_changed(self, session, name: str, direction: str | None) -> None:
        session.connection().execute(
            M.update().where(M.c.name == name).values(benchmark_direction=direction))

    # -- model versions --------------------------------------------------------
    def version_created(self, session, name: str, version: int, run_id: str | None,
                        created_at: int, version_tags: dict, owner: Owner) -> None:
        """``version_tags``: the parsed Hokusai tags the version was created with."""
        connection = session.connection()
        explicit = version_tags.get(tags.PARENT_VERSION)
        # The previous version is read by the INSERT itself: one round trip fewer.
        if explicit:
            parent = self._check_parent(connection, name, version, explicit)
        elif connection.dialect.name == "mysql":  # MySQL refuses to read the insert's table
            parent = self._previous_version(connection, name, version)
        else:
            parent = self._previous_version_query(name, version).scalar_subquery()
        columns = {"model_name": name, "version": version, "created_at": created_at,
                   "run_id": run_id, "parent_version": parent,
                   "parent_explicit": explicit is not None, **owner.columns()}
        for key, value in version_tags.items():
            if key != tags.PARENT_VERSION:
                columns.update(_tag_columns(key, value))
        if "contributor" in columns:
            columns["contributed_at"] = created_at
        connection.execute(V.insert().values(**columns))
        if version_tags.get(tags.TOKEN_ID):
            self._bind_token(connection, name, version, version_tags[tags.TOKEN_ID],
                             version_tags.get(tags.BENCHMARK_VALUE))

    def version_tag_changed(self, session, name: str, version: int, key: str, value) -> None:
        """A Hokusai tag set (``value`` parsed) or deleted (``value`` None)."""
        connection = session.connection()
        where = _version_key(name, version)
        if key == tags.PARENT_VERSION:
            parent = self._check_parent(connection, name, version, value) if value \
                else self._previous_version(connection, name, version)
            columns = {"parent_version": parent, "parent_explicit": value is not None}
        elif key == tags.TOKEN_ID:
            return self._retoken(connection, name, version, value)
        else:
            columns = _tag_columns(key, value)
        connection.execute(V.update().where(where).values(**columns))

    def version_deleted(self, session, name: str, version: int) -> None:
        connection = session.connection()
        row = first(connection, sa.select(V.c.parent_version, V.c.token_key).where(
            _version_key(name, version)))
        if row is None:
            return
        connection.execute(V.delete().where(_version_key(name, version)))
        # Children of the deleted version now descend from its parent.
        connection.execute(V.update().where(V.c.model_name == name,
                                            V.c.parent_version == version)
                           .values(parent_version=row["parent_version"]))
        if row["token_key"]:
            self._release_token(connection, row["token_key"])

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def _previous_version_query(name: str, version: int):
        return sa.select(sa.func.max(V.c.version)).where(V.c.model_name == name,
                                                         V.c.version < version)

    def _previous_version(self, connection, name: str, version: int) -> int | None:
        return connection.execute(self._previous_version_query(name, version)).scalar()

    @staticmethod
    def _check_parent(connection, name: str, version: int, parent: int) -> int:
        exists = first(connection, sa.select(V.c.version).where(_version_key(name, parent)))
        if parent >= version or exists is None:
            raise tags.invalid(f"Invalid {tags.PARENT_VERSION} {parent}: must be an existing "
                               f"earlier version of model '{name}' (this is version {version})")
        return parent

    def _retoken(self, connection, name: str, version: int, token_id: str | None) -> None:
        old = connection.execute(sa.select(V.c.token_key).where(_version_key(name, version))
                                 ).scalar()
        connection.execute(V.update().where(_version_key(name, version))
                           .values(**_tag_columns(tags.TOKEN_ID, token_id)))
        if token_id and token_id.lower() != old:
            value = connection.execute(sa.select(V.c.benchmark_value).where(
                _version_key(name, version))).scalar()
            self._bind_token(connection, name, version, token_id, value)
        if old and old != (token_id or "").lower():
            self._release_token(connection, old)

    @staticmethod
    def _bind_token(connection, name: str, version: int, token_id: str, baseline) -> None:
        """Bind ``token_id`` to the model, or refuse when the token is another
        model's or the model holds another token."""
        key = token_id.lower()
        bound = first(connection, sa.select(T.c.model_name).where(T.c.token_key == key))
        if bound is None:
            held = first(connection, sa.select(T.c.token_key, T.c.token_id)
                         .where(T.c.model_name == name))
            if held is not None:
                if first(connection, sa.select(V.c.version).where(
                        V.c.model_name == name, V.c.token_key == held["token_key"]).limit(1)):
                    raise MlflowException(
                        f"Registered model '{name}' is already bound to token "
                        f"'{held['token_id']}'; a model carries one token",
                        RESOURCE_ALREADY_EXISTS)
                connection.execute(T.delete().where(T.c.token_key == held["token_key"]))
            # A concurrent writer may bind the same token first: then re-read it.
            insert_ignoring_conflicts(connection, T, {
                "token_key": key, "token_id": token_id, "model_name": name,
                "baseline_value": baseline, "baseline_version": version,
                "bound_at": get_current_time_millis()})
            bound = first(connection, sa.select(T.c.model_name).where(T.c.token_key == key))
        if bound is None or bound["model_name"] != name:
            holder = f"registered model '{bound['model_name']}'" if bound else "another model"
            raise MlflowException(f"Token '{token_id}' is already bound to {holder}",
                                  RESOURCE_ALREADY_EXISTS)

    @staticmethod
    def _release_token(connection, token_key: str) -> None:
        """Unbind a token no live version carries any more."""
        if first(connection, sa.select(V.c.version).where(V.c.token_key == token_key).limit(1)) \
                is None:
            connection.execute(T.delete().where(T.c.token_key == token_key))
