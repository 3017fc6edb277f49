"""Throwaway databases on the shared PostgreSQL server, dropped when done."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import sqlalchemy

POSTGRES_ADMIN_URI = os.environ.get(
    "HOKUSAI_TEST_POSTGRES_URI", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def postgres_databases(prefix: str = "hokusai_test"):
    """Yield a factory of fresh database URIs; every database it made is dropped after."""
    engine = sqlalchemy.create_engine(POSTGRES_ADMIN_URI, isolation_level="AUTOCOMMIT")
    names = []

    def make() -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return POSTGRES_ADMIN_URI.rsplit("/", 1)[0] + "/" + name

    try:
        yield make
    finally:
        with engine.connect() as conn:
            for name in names:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
