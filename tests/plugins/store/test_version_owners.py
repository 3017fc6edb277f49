"""Model versions' owners live in Hokusai's table only (issue 21): MLflow's
model_versions.user_id holds the principal's plain name, never a Hokusai stamp,
after migration 0016 and after normal use, on SQLite and PostgreSQL."""

import pytest
import sqlalchemy as sa
from alembic import command
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

from mlflow_hokusai.db import migrate
from mlflow_hokusai.plugins.auth.gate import Principal
from mlflow_hokusai.plugins.store import owners, reader
from mlflow_hokusai.plugins.store.registry import registry_store_class

STAMP = "\x1f"  # what trigger sets up to 5 put between a name and a key id


@pytest.fixture(params=["sqlite", "postgresql"])
def database_uri(request, tmp_path, make_postgres_database):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/owners.db"
    return make_postgres_database()


def _user_ids(engine) -> dict[int, str | None]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.text(
            "SELECT version, user_id FROM model_versions ORDER BY version")).tuples().all())


def _version_owners(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(
            "SELECT workspace, name, version, owner, owner_key_id FROM hokusai_version_owners "
            "ORDER BY name, version"))]


def _stamped(engine) -> list:
    """Every user_id of MLflow's tables holding a Hokusai stamp."""
    with engine.connect() as connection:
        return [row for table in ("model_versions", "runs") for row in connection.execute(
            sa.text(f"SELECT user_id FROM {table} WHERE user_id LIKE :stamp"),
            {"stamp": f"%{STAMP}%"})]


def test_the_migration_moves_stamped_owners_out_of_mlflows_rows(database_uri):
    plain = SqlAlchemyStore(database_uri)  # MLflow's tables, written by MLflow alone
    plain.create_registered_model("m")
    for _ in range(3):
        plain.create_model_version("m", "mlflow-artifacts:/m")
    engine = plain.engine
    with engine.connect() as connection:
        command.upgrade(migrate._config(connection), "0013_serving")
        connection.commit()
    with engine.begin() as connection:
        # v1: stamped, its trigger missing (a restore); v2: as trigger set 5 left
        # it (the index holds the owner, user_id the name); v3: plain MLflow's.
        connection.execute(sa.text("UPDATE model_versions SET user_id = :u WHERE version = 1"),
                           {"u": f"alice{STAMP}k1"})
        connection.execute(sa.text("UPDATE model_versions SET user_id = 'bob' WHERE version = 2"))
        connection.execute(sa.text(
            "INSERT INTO hokusai_model_versions (model_name, version, owner, owner_key_id, "
            "created_at, parent_explicit) VALUES ('m', 2, 'bob', 'k2', 1, false)"))
    assert migrate.upgrade(engine)
    assert _stamped(engine) == []
    assert _user_ids(engine) == {1: "alice", 2: "bob", 3: None}
    assert _version_owners(engine) == [("default", "m", 1, "alice", "k1"),
                                       ("default", "m", 2, "bob", "k2"),
                                       ("default", "m", 3, None, None)]
    with engine.connect() as connection:  # the index's old columns are emptied
        assert connection.execute(sa.text(
            "SELECT count(*) FROM hokusai_model_versions WHERE owner IS NOT NULL "
            "OR owner_key_id IS NOT NULL")).scalar() == 0
    engine.dispose()


def test_normal_use_writes_owners_only_into_hokusais_table(database_uri, monkeypatch):
    principal = Principal("ivy", "api_key", frozenset(), key_id="0123456789abcdef")
    monkeypatch.setattr(owners, "current_principal", lambda: principal)
    store = registry_store_class()(database_uri)
    store.create_registered_model("m")
    created = store.create_model_version("m", "mlflow-artifacts:/m")
    assert created.user_id == "ivy"  # what MLflow's API answers
    store.create_model_version("m", "mlflow-artifacts:/m")
    engine = store.engine
    assert _stamped(engine) == []
    assert _user_ids(engine) == {1: "ivy", 2: "ivy"}
    assert _version_owners(engine) == [("default", "m", v, "ivy", principal.key_id)
                                       for v in (1, 2)]

    monkeypatch.setattr(owners, "current_principal", lambda: None)
    SqlAlchemyStore(database_uri).create_model_version("m", "mlflow-artifacts:/m")
    # A writer that bypasses Hokusai's store: the trigger still records what MLflow wrote.
    assert _version_owners(engine)[-1] == ("default", "m", 3, None, None)

    store.rename_registered_model("m", "n")  # the owners follow the model
    assert [row[1] for row in _version_owners(engine)] == ["n"] * 3
    with store.ManagedSessionMaker() as session:
        row = reader.version_owner(session, "default", "n", 1)
        assert (row["owner"], row["owner_key_id"]) == ("ivy", principal.key_id)
    store.delete_model_version("n", "1")
    with store.ManagedSessionMaker() as session:  # a deleted version has no owner to show
        assert reader.version_owner(session, "default", "n", 1) is None
    store.delete_registered_model("n")
    assert _version_owners(engine) == []
    engine.dispose()
