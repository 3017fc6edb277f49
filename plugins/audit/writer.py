"""Store audit records in the database, keeping every record that can be kept.

A batch is one transaction. If the database refuses it for its content (not for
being unreachable), the records go one by one, and one still refused goes in
its strict form (sanitize.strict); only a record refused in that form too is
dropped, counted and logged with its request id. Inserts skip a record whose
``record_id`` is already stored, so replaying a spool twice stores it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mlflow_hokusai import signals
from mlflow_hokusai.db.schema import audit_log
from mlflow_hokusai.plugins.audit import sanitize

_logger = logging.getLogger(__name__)
_IDEMPOTENT: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert,
                                              "sqlite": sqlite.insert}


class Unavailable(Exception):
    """The database could not be reached: keep the records and try later."""


def _unavailable(error: Exception) -> bool:
    return isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError,
                              sa.exc.DisconnectionError, sa.exc.TimeoutError)) or \
        (isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated)


def dropped(count: int, why: str) -> None:
    _logger.error("%d audit record(s) dropped: %s", count, why)
    signals.audit_dropped.send(None, count=count)


class AuditWriter:
    def __init__(self, engine):
        self._engine = engine
        insert = _IDEMPOTENT.get(engine.dialect.name)
        # Other databases (MySQL) get a plain insert: a replay may store a record twice.
        self._statement = insert(audit_log).on_conflict_do_nothing(
            index_elements=["record_id"]) if insert else audit_log.insert()

    def _insert(self, rows: list[dict]) -> None:
        with self._engine.begin() as connection:
            connection.execute(self._statement, rows)

    def write(self, rows: list[dict]) -> None:
        """Store ``rows`` (already ``sanitize.storable``); raises ``Unavailable``
        when the database cannot be reached, having stored none or some of them."""
        if not rows:
            return
        try:
            self._insert(rows)
            return
        except Exception as error:  # classified below
            if _unavailable(error):
                raise Unavailable(str(error)) from error
            _logger.warning("Audit: a batch of %d was refused (%s); storing one by one",
                            len(rows), type(error).__name__)
        for row in rows:
            self._write_one(row)

    def _write_one(self, row: dict) -> None:
        error = None
        for form in (row, sanitize.strict(row)):
            try:
                self._insert([form])
                return
            except Exception as refused:  # classified below
                if _unavailable(refused):
                    raise Unavailable(str(refused)) from refused
                error = refused
        dropped(1, f"request {row.get('request_id')!r}: the database refused it even "
                   f"sanitized ({type(error).__name__})")
