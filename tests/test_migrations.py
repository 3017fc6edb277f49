"""Hokusai's own Alembic history: own version table, safe under concurrent starts."""

import concurrent.futures
import subprocess

import pytest
import sqlalchemy

from mlflow_hokusai.db import migrate
from tests.servers import BIN


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
