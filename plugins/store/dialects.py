"""The few SQL fragments in which PostgreSQL and SQLite triggers differ, and how
each dialect turns a trigger (triggers.py) into DDL.

Value checks mirror tags.py's: the store refuses a bad value with a clear
message before MLflow writes; a writer that bypasses the store gets the
fragment's tolerant reading instead (NULL: not indexed).
"""

from __future__ import annotations

import sqlalchemy as sa

from mlflow_hokusai.plugins.store.refusals import PREFIX


class Postgres:
    """Runs a new version's trigger at commit (deferred), where one INSERT reads
    all its tags; their own triggers, earlier, find no index row and skip."""

    name = "postgresql"
    now_ms = "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"

    real = "DOUBLE PRECISION"

    @staticmethod
    def is_number(v: str) -> str:
        return f"{v} ~ '^ *-?(0|[1-9][0-9]{{0,19}})([.][0-9]{{1,20}})?([eE][-+]?[0-9]{{1,2}})? *$'"

    @staticmethod
    def is_integer(v: str) -> str:
        return f"{v} ~ '^[0-9]{{1,9}}$'"

    @staticmethod
    def is_token(v: str) -> str:
        return f"{v} ~ '^[A-Za-z0-9]([A-Za-z0-9-]{{0,62}}[A-Za-z0-9])?$'"

    @staticmethod
    def is_address(v: str) -> str:
        return f"{v} ~ '^0x[0-9a-fA-F]{{40}}$'"

    @staticmethod
    def insert_ignoring_conflicts(table: str, columns: str, select: str) -> str:
        return f"INSERT INTO {table} ({columns}) {select} ON CONFLICT DO NOTHING"

    @staticmethod
    def refuse(code: str, condition: str) -> str:
        # P0001 (raise_exception) reaches Python as an InternalError: MLflow's
        # create_model_version retries IntegrityErrors, which would hide it.
        return f"IF ({condition}) THEN RAISE EXCEPTION '{PREFIX}{code}'; END IF"

    @staticmethod
    def lock(table: str, condition: str) -> list[str]:
        return [f"PERFORM 1 FROM {table} WHERE {condition} FOR UPDATE"]

    @staticmethod
    def only_if(condition: str, statements: list[str]) -> list[str]:
        if not statements:
            return []
        return [f"IF ({condition}) THEN\n" + ";\n".join(statements) + ";\nEND IF"]

    @staticmethod
    def existing_names(connection) -> set[str]:
        rows = connection.execute(sa.text(  # on this schema's tables only
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgname LIKE 'hokusai%' "
            "AND c.relnamespace = to_regnamespace(current_schema())::oid"))
        return {row[0] for row in rows}

    @staticmethod
    def drop(connection, names: set[str]) -> None:
        for name in names:
            table = connection.execute(sa.text(
                "SELECT t.tgrelid::regclass::text FROM pg_trigger t JOIN pg_class c "
                "ON c.oid = t.tgrelid WHERE t.tgname = :name "
                "AND c.relnamespace = to_regnamespace(current_schema())::oid"),
                {"name": name}).scalar()
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")

    @classmethod
    def _branches(cls, branches) -> str:
        """The first branch whose condition holds (None: always)."""
        parts: list[str] = []
        for condition, statements in branches:
            code = ";\n".join(statements(cls)) + ";"
            if condition is None:
                parts.append(code if not parts else f"ELSE\n{code}")
            else:
                parts.append(f"{'ELSIF' if parts else 'IF'} ({condition(cls)}) THEN\n{code}")
        return "\n".join(parts) + ("\nEND IF;" if branches[0][0] is not None else "")

    @classmethod
    def create(cls, connection, trigger) -> None:
        name = trigger.name
        when = trigger.when
        if trigger.by_key:
            keys = ", ".join(f"'{key}'" for key in trigger.by_key)
            when = f"{trigger.row}.key IN ({keys})"
            body = "\n".join(
                f"{'IF' if number == 0 else 'ELSIF'} {trigger.row}.key = '{key}' THEN\n"
                + cls._branches(branches)
                for number, (key, branches) in enumerate(trigger.by_key.items())) + "\nEND IF"
        else:
            body = ";\n".join(trigger.statements(cls))
        connection.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
            f"BEGIN\n{body};\nRETURN NULL;\nEND\n$body$")
        kind = "CONSTRAINT TRIGGER" if trigger.deferred else "TRIGGER"
        timing = " DEFERRABLE INITIALLY DEFERRED" if trigger.deferred else ""
        condition = f" WHEN ({when})" if when else ""
        connection.exec_driver_sql(
            f"CREATE {kind} {name} AFTER {' OR '.join(trigger.events)} ON {trigger.table}"
            f"{timing} FOR EACH ROW{condition} EXECUTE FUNCTION {name}()")


class Sqlite:
    """No deferred triggers: a new version's trigger inserts its row before MLflow
    inserts the tags, whose own triggers then fill it in."""

    name = "sqlite"
    now_ms = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    real = "REAL"

    @staticmethod
    def is_number(v: str) -> str:
        # JSON's number grammar is tags.py's; the length and exponent as on PostgreSQL.
        return (f"length(trim({v})) BETWEEN 1 AND 45 AND trim({v}) NOT GLOB '*[^0-9eE.+-]*' "
                f"AND json_valid(trim({v})) AND json_type(trim({v})) IN ('integer', 'real') "
                f"AND trim({v}) NOT GLOB '*[eE]*[0-9][0-9][0-9]*'")

    @staticmethod
    def is_integer(v: str) -> str:
        return f"length({v}) BETWEEN 1 AND 9 AND {v} NOT GLOB '*[^0-9]*'"

    @staticmethod
    def is_token(v: str) -> str:
        return (f"length({v}) BETWEEN 1 AND 64 AND {v} NOT GLOB '*[^A-Za-z0-9-]*' "
                f"AND {v} NOT GLOB '-*' AND {v} NOT GLOB '*-'")

    @staticmethod
    def is_address(v: str) -> str:
        return (f"length({v}) = 42 AND {v} GLOB '0x*' "
                f"AND substr({v}, 3) NOT GLOB '*[^0-9a-fA-F]*'")

    @staticmethod
    def insert_ignoring_conflicts(table: str, columns: str, select: str) -> str:
        return f"INSERT OR IGNORE INTO {table} ({columns}) {select}"

    @staticmethod
    def refuse(code: str, condition: str) -> str:
        return f"SELECT RAISE(ABORT, '{PREFIX}{code}') WHERE {condition}"

    @staticmethod
    def lock(table: str, condition: str) -> list[str]:
        return []  # one writer at a time already: SQLite locks the database

    @staticmethod
    def only_if(condition: str, statements: list[str]) -> list[str]:
        # No branches in SQLite triggers: only_if is an optimisation, and every
        # statement given to it must be right (if useless) when ``condition`` fails.
        return statements

    @staticmethod
    def existing_names(connection) -> set[str]:
        rows = connection.execute(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'hokusai%'"))
        return {row[0] for row in rows}

    @staticmethod
    def drop(connection, names: set[str]) -> None:
        for name in names:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")

    @classmethod
    def create(cls, connection, trigger) -> None:
        # SQLite triggers take one event each, none is deferred, none branches.
        if trigger.by_key:
            # A trigger per branch; the branches' conditions exclude each other.
            parts = {f"{trigger.name}_{key}_{number}": (
                f"{trigger.row}.key = '{key}'"
                + (f" AND ({condition(cls)})" if condition else ""), statements)
                for key, branches in trigger.by_key.items()
                for number, (condition, statements) in enumerate(branches)}
        else:
            parts = {trigger.name: (trigger.when, trigger.statements)}
        for name, (when, statements) in parts.items():
            body = "".join(f"{statement};\n" for statement in statements(cls))
            condition = f" WHEN {when}" if when else ""
            for number, event in enumerate(trigger.events):
                connection.exec_driver_sql(
                    f"CREATE TRIGGER {name}_{number} AFTER {event} ON {trigger.table} "
                    f"FOR EACH ROW{condition}\nBEGIN\n{body}END")


DIALECTS = {dialect.name: dialect for dialect in (Postgres, Sqlite)}
