"""The triggers that keep the registry index: installed once per database, and
an older set replaced when they change."""

import pytest
import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

from mlflow_hokusai.db import migrate
from mlflow_hokusai.plugins.store import tags, triggers
from mlflow_hokusai.plugins.store.dialects import DIALECTS
from mlflow_hokusai.plugins.store.registry import registry_store_class


def _names(engine) -> set[str]:
    with engine.connect() as connection:
        return DIALECTS[engine.dialect.name].existing_names(connection)


def test_install_creates_the_triggers_once_and_replaces_an_older_set(tmp_path,
                                                                      make_postgres_database):
    for uri in (f"sqlite:///{tmp_path}/t.db", make_postgres_database()):
        engine = SqlAlchemyStore(uri).engine  # MLflow's tables, then Hokusai's
        migrate.upgrade(engine)
        assert triggers.install(engine) is True
        installed = _names(engine)
        assert installed and all(name.startswith(triggers.PREFIX) for name in installed)
        assert triggers.install(engine) is False and _names(engine) == installed

        old = "hokusai_v0_version_tag"
        with engine.begin() as connection:
            DIALECTS[engine.dialect.name].drop(connection, installed)
            DIALECTS[engine.dialect.name].create(connection, triggers.Trigger(
                old, "model_version_tags", ("INSERT",), "",
                lambda dialect: ["DELETE FROM hokusai_tokens WHERE 1 = 0"]))
        assert old in "".join(_names(engine))
        assert triggers.install(engine) is True
        assert _names(engine) == installed  # the old one dropped

        newer = "hokusai_v999_version_tag"  # a newer Hokusai's, sharing the database
        with engine.begin() as connection:
            DIALECTS[engine.dialect.name].drop(connection, installed)
            DIALECTS[engine.dialect.name].create(connection, triggers.Trigger(
                newer, "model_version_tags", ("INSERT",), "",
                lambda dialect: ["DELETE FROM hokusai_tokens WHERE 1 = 0"]))
        assert triggers.current(engine) and triggers.install(engine) is False
        assert newer in "".join(_names(engine))
        engine.dispose()


def test_a_database_without_mlflow_tables_gets_no_triggers(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/keys.db")
    assert triggers.install(engine) is False and _names(engine) == set()


def test_sqlite_sessions_keep_mlflows_settings_without_repeating_them(tmp_path):
    """MLflow's per-session PRAGMAs expire the connection's prepared statements
    (recompiling the triggers); the store sends each once per connection."""
    store = registry_store_class()(f"sqlite:///{tmp_path}/r.db")
    sent = []
    sa.event.listen(store.engine, "after_cursor_execute", lambda conn, cursor, statement, *_:
                    sent.append((id(conn.connection.dbapi_connection), statement)))
    for number in range(5):
        store.create_registered_model(f"m{number}")
    pragmas = [sent_on for sent_on in sent if sent_on[1].startswith("PRAGMA")]
    for setting in ("PRAGMA case_sensitive_like = true;", "PRAGMA foreign_keys = ON;"):
        on = [connection for connection, statement in pragmas if statement == setting]
        assert on and len(on) == len(set(on))  # once per connection
    assert len(pragmas) < 3 * 5  # not three PRAGMAs per session any more
    with store.ManagedSessionMaker() as session:  # the settings hold all the same
        assert session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(sa.text("SELECT 'a' LIKE 'A'")).scalar() == 0
    store.engine.dispose()


SAMPLES = {
    "benchmark_value": ["0.5", "10", "-1.5", "2e-3", "1E+05", " 1 ", "0", "+1", ".5", "5.",
                        "01", "1_000", "nan", "inf", "1e999", "1e-400", "", "abc", "1.2.3",
                        "\t1", "1 2", "-", "1e"],
    "benchmark_direction": ["lower", " Lower ", "HIGHER", "lower\t", "up", ""],
    "hokusai_token_id": ["abc", "Tok-1", "a" * 64, "a" * 65, "-a", "a-", "a b", "ä", ""],
    "hokusai_contributor": ["0x" + "ab" * 20, "0x" + "AB" * 20, "0x123", "0X" + "ab" * 20,
                            "0x" + "g" * 40, ""],
}


@pytest.mark.parametrize("key", SAMPLES)
def test_the_triggers_read_values_as_the_store_checks_them(key, tmp_path,
                                                           make_postgres_database):
    """A value the store accepts is one the triggers index, and the other way round
    (a writer that bypasses the store gets the triggers' reading)."""
    accepted = {}
    for value in SAMPLES[key]:
        try:
            tags.parse(key, value)
            accepted[value] = True
        except MlflowException:
            accepted[value] = False
    for uri in (f"sqlite:///{tmp_path}/v.db", make_postgres_database()):
        engine = sa.create_engine(uri)
        dialect = DIALECTS[engine.dialect.name]
        condition = triggers._READINGS[key].valid(dialect, "CAST(:v AS VARCHAR(100))")
        with engine.connect() as connection:
            read = {value: bool(connection.execute(
                sa.text(f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END"), {"v": value}).scalar())
                for value in SAMPLES[key]}
        engine.dispose()
        assert read == accepted, engine.dialect.name


def test_replacing_an_older_set_rebuilds_what_it_wrote(tmp_path, make_postgres_database):
    """An index an older trigger set kept (here: a contribution dated and a token
    baseline frozen as set 4 did) is rebuilt when the new set goes in, so it
    reads as the new set defines it."""
    from mlflow.entities.model_registry import ModelVersionTag

    from mlflow_hokusai.plugins.store import reader

    alice = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
    for uri in (f"sqlite:///{tmp_path}/old.db", make_postgres_database()):
        store = registry_store_class()(uri)
        store.create_registered_model("m")
        store.create_model_version("m", "mlflow-artifacts:/m", tags=[
            ModelVersionTag("hokusai_token_id", "tok"), ModelVersionTag("benchmark_value", "1"),
            ModelVersionTag("hokusai_contributor", alice)])
        created = store.get_model_version("m", "1").creation_timestamp
        engine = store.engine
        with engine.begin() as connection:  # as an older set left it
            connection.execute(sa.text("UPDATE hokusai_model_versions SET contributed_at = 7"))
            dialect = DIALECTS[engine.dialect.name]
            dialect.drop(connection, dialect.existing_names(connection))
            dialect.create(connection, triggers.Trigger(
                "hokusai_v4_version_tag", "model_version_tags", ("INSERT",), "",
                lambda d: ["DELETE FROM hokusai_tokens WHERE 1 = 0"]))
        engine.dispose()
        store = registry_store_class()(uri)  # starts: installs set 5, rebuilds
        assert triggers.current(store.engine)
        with store.ManagedSessionMaker() as session:
            assert [row["contributed_at"] for row in reader.contributions(session, alice)] \
                == [created]
            assert reader.token(session, "tok")["baseline_value"] == 1.0
        store.engine.dispose()
