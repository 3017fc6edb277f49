"""Small SQL helpers the index readers share."""

from __future__ import annotations


def first(connection, statement):
    """The first row as a mapping, or None (on a Session or a Connection)."""
    return connection.execute(statement).mappings().first()
