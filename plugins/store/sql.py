"""Small SQL helpers the index upkeep shares."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(connection, table: sa.Table, values: dict) -> None:
    """INSERT that does nothing when a unique key already exists: a concurrent
    writer may have inserted the same row first; the caller re-reads it."""
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(table).values(**values).on_conflict_do_nothing()
    else:  # MySQL
        statement = table.insert().values(**values).prefix_with("IGNORE")
    connection.execute(statement)


def first(connection, statement):
    """The first row as a mapping, or None (on a Session or a Connection)."""
    return connection.execute(statement).mappings().first()
