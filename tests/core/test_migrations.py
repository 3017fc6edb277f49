"""Hokusai's own Alembic history: own version table, safe under concurrent starts."""

import concurrent.futures
import subprocess

import pytest
import sqlalchemy

from mlflow_hokusai.db import migrate
from tests.support.servers import BIN


def _upgrade(uri):
    return subprocess.run([str(BIN / "hokusai"), "db", "upgrade", "--database-uri", uri],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path, make_postgres_database):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/fresh.db"
    return make_postgres_database()


def test_concurrent_upgrades_on_a_fresh_database_do_not_race(fresh_database):
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(_upgrade, [fresh_database] * 6))
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    upgraded = [r for r in results if "upgraded to" in r.stdout]
    assert len(upgraded) == 1  # exactly one process did the work
    engine = sqlalchemy.create_engine(fresh_database)
    with engine.connect() as conn:
        versions = conn.execute(sqlalchemy.text(
            f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalars().all()
        tables = sqlalchemy.inspect(conn).get_table_names()
    engine.dispose()
    assert versions == [migrate.head_revision()]
    assert "hokusai_api_keys" in tables
    assert "alembic_version" not in tables  # MLflow's version table is left alone


def test_model_owners_recorded_by_name_move_into_the_default_workspace(tmp_path):
    """0010: owners the registry index held by name alone become (default, name)."""
    from alembic import command

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/old.db")
    with engine.connect() as connection:
        command.upgrade(migrate._config(connection), "0009_key_workspaces")
        connection.execute(sqlalchemy.text(
            "INSERT INTO hokusai_registered_models (name, owner, owner_key_id, created_at) "
            "VALUES ('churn', 'alice', 'k1', 5), ('legacy', NULL, NULL, 6)"))
        connection.commit()
    assert migrate.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text(
            "SELECT workspace, name, owner, owner_key_id, created_at "
            "FROM hokusai_model_owners")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("default", "churn", "alice", "k1", 5)]
