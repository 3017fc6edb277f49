"""Create or upgrade Hokusai's tables, once, even when many workers start together."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

VERSION_TABLE = "alembic_version_hokusai"
_LOCK_ID = zlib.crc32(b"mlflow-hokusai-migrations")
_logger = logging.getLogger(__name__)


def _config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", "mlflow_hokusai.db:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def current_revision(connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@contextlib.contextmanager
def _migration_lock(connection):
    """Serialize migrations across processes: an advisory lock on servers, a file
    lock next to a SQLite database."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
            connection.commit()
    elif dialect == "mysql":
        connection.execute(sqlalchemy.text("SELECT GET_LOCK('hokusai_migrations', 300)"))
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK('hokusai_migrations')"))
    elif dialect == "sqlite" and connection.engine.url.database not in (None, "", ":memory:"):
        with open(os.path.abspath(connection.engine.url.database) + ".hokusai-lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    else:
        yield


@contextlib.contextmanager
def locked(engine: sqlalchemy.engine.Engine):
    """Hold the migration lock, for one-off work that must not run twice at once
    (rebuilding the registry index when several workers start together)."""
    with engine.connect() as connection, _migration_lock(connection):
        yield


def upgrade(engine: sqlalchemy.engine.Engine) -> bool:
    """Bring the schema to head; returns True if anything was migrated."""
    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            return False
        connection.rollback()
        with _migration_lock(connection):
            # Another worker may have finished while this one waited for the lock.
            if current_revision(connection) == head:
                return False
            connection.rollback()
            command.upgrade(_config(connection), "head")
            connection.commit()
    _logger.info("Hokusai tables upgraded to %s", head)
    return True
