"""Spare SQLite connections the PRAGMAs MLflow repeats on every session.

MLflow's store runs ``PRAGMA foreign_keys = ON`` and ``PRAGMA
case_sensitive_like = true`` at the start of every SQLite session. Each expires
every prepared statement of the connection, so every transaction compiles its
statements again, with every trigger they fire: measured, that alone made a
``create_model_version`` about 15% slower once the registry index's triggers
were in place. Both settings outlive the session on a pooled connection, so the
store skips a repeat on a connection that already has it.
"""

from __future__ import annotations

from sqlalchemy import event

# As MLflow's make_managed_session sends them (busy_timeout expires nothing).
_SETTINGS = frozenset({"PRAGMA foreign_keys = ON;", "PRAGMA case_sensitive_like = true;"})
_DONE = "hokusai_pragmas_done"


def _done(connection) -> set:
    return connection.connection.info.setdefault(_DONE, set())  # kept across checkouts


def _skip_repeat(connection, cursor, statement, parameters, context, executemany):
    if statement in _SETTINGS and statement in _done(connection):
        return "SELECT 1", parameters
    return statement, parameters


def _record(connection, cursor, statement, parameters, context, executemany):
    if statement in _SETTINGS:  # only once it ran: a failed one is sent again
        _done(connection).add(statement)


def install(engine) -> None:
    """Nothing on this engine may turn these settings off again: the store would
    not know, and would skip turning them back on."""
    if engine.dialect.name == "sqlite" and \
            not event.contains(engine, "before_cursor_execute", _skip_repeat):
        event.listen(engine, "before_cursor_execute", _skip_repeat, retval=True)
        event.listen(engine, "after_cursor_execute", _record)
