"""Rows Hokusai keeps under a registered model's name follow the model: a
renamed model's rows move to its new name, a deleted model's rows go with it.
A later model of that name (another principal's, perhaps in another workspace)
must start with none of them: they hold the earlier model's prediction inputs,
deployments and drift reports.

The registry store sends ``signals.model_changed`` inside MLflow's own write
transaction (plugins/store/registry.py). When Hokusai's tables share MLflow's
database, as they do unless HOKUSAI_DATABASE_URI names another (``database_of``
sees through spellings), the rows move
in that transaction: MLflow's change and theirs commit together or not at all,
and a concurrent rename to the freed name waits for both. In another database
they move once MLflow's transaction has committed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import event

if TYPE_CHECKING:
    from mlflow_hokusai.app import Hokusai

_logger = logging.getLogger(__name__)


def move(connection, table: sa.Table, column, old: str, new: str | None, *where) -> None:
    """Rows of ``table`` whose ``column`` is ``old`` (and that match ``where``)
    get ``new``; with no ``new``, they are deleted."""
    if new:
        # Rows already at the new value can only be left over from a model deleted
        # outside the server: stale, and in the way of a one-row-per-model key
        # (drift checks, grants).
        connection.execute(sa.delete(table).where(*where, column == new))
        connection.execute(sa.update(table).where(*where, column == old)
                           .values({column.name: new}))
    else:
        connection.execute(sa.delete(table).where(*where, column == old))


def follow(connection, tables, name: str, new_name: str | None) -> None:
    """Move the rows of ``tables`` (each with a ``model_name`` column) from
    ``name`` to ``new_name``, or delete them when there is no new name."""
    for table in tables:
        move(connection, table, table.c.model_name, name, new_name)


# A port left out of a URI is the server's default one.
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}


def database_of(url: sa.engine.URL | str) -> tuple:
    """What names a database, however its URI spells it: not the driver
    (``postgresql://`` is ``postgresql+psycopg2://``), not a default port, not
    a relative SQLite path. Hosts and query options are compared as written
    (``localhost`` may be another server than ``127.0.0.1``, an ``options``
    may set another schema search path): a wrong "same" would run Hokusai's
    statements where its tables are not."""
    url = sa.engine.make_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ""
        if path and path != ":memory:" and not path.startswith("file:"):
            path = os.path.realpath(path)
        return backend, path
    return (backend, url.username, (url.host or "").lower(),
            url.port or _DEFAULT_PORTS.get(backend), url.database, sorted(url.query.items()))


def _same_database(session, engine: sa.engine.Engine) -> bool:
    return database_of(session.get_bind().url) == database_of(engine.url)


def alongside(hokusai: Hokusai, session, work: Callable[[sa.engine.Connection], None], what: str,
              then: Callable[[], None] | None = None) -> None:
    """Run ``work`` on ``hokusai``'s database with MLflow's write transaction
    (``session``): in it when both are one database, so that a failure rolls
    MLflow's change back too; else after its commit, where a failure is logged
    (MLflow's change stands). ``then`` runs after the commit. Only for the
    store this app serves, in its requests: another registry store of the
    process (a script's, a test's) changes another registry."""
    import flask  # here: the hokusai CLI imports grants, and so this module

    if not (flask.has_app_context() and flask.current_app.extensions.get("hokusai") is hokusai):
        return
    if _same_database(session, hokusai.engine):
        try:
            work(session.connection())
        except sa.exc.SQLAlchemyError as error:
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

            # MLflow would answer a database error 400, blaming the request.
            raise MlflowException(f"{what} could not follow the model's change, so the "
                                  "change was not made", INTERNAL_ERROR) from error
    else:
        def work_after_commit(_session) -> None:
            try:
                with hokusai.engine.begin() as connection:
                    work(connection)
            except Exception:
                _logger.exception("%s did not follow the model's change", what)

        event.listen(session, "after_commit", work_after_commit, once=True)
    if then is not None:  # listeners run in the order they were added
        event.listen(session, "after_commit", lambda _: then(), once=True)


def follower(hokusai: Hokusai, *tables: sa.Table):
    """A receiver of ``signals.model_changed`` that makes the rows of ``tables``
    (in ``hokusai``'s database) follow the model."""

    def follow_model(sender, session, name: str, new_name: str | None) -> None:
        alongside(hokusai, session,
                  lambda connection: follow(connection, tables, name, new_name),
                  f"Rows of {', '.join(table.name for table in tables)} of model {name!r}")

    return follow_model
