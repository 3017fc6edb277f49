"""The hash-chained ledger on SQLite and PostgreSQL: appends (also concurrent
ones) chain, `hokusai ledger verify` passes on the history and names the entry
a hand edit in the database broke, `export` writes a token's entries."""

from __future__ import annotations

import itertools
import json
import threading

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mlflow_hokusai.cli import main
from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.ledger.chain import GENESIS, Ledger, entry_hash
from tests.support.databases import postgres_databases


@pytest.fixture(scope="module")
def postgres_uri():
    with postgres_databases("hokusai_ledger") as make:
        yield make()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    uri = request.getfixturevalue("postgres_uri")
    engine = get_engine(uri)
    migrate.upgrade(engine)
    with engine.begin() as connection:  # the module shares one database
        connection.execute(sa.text("DELETE FROM hokusai_ledger"))
    return uri


@pytest.fixture
def ledger(database_uri):
    engine = get_engine(database_uri)
    migrate.upgrade(engine)
    ticks = iter(range(1_800_000_000_000, 1_900_000_000_000, 1000))
    return Ledger(engine, clock=lambda: next(ticks))


def history(ledger):
    ledger.append("contributor_linked", principal="alice",
                  data={"principal": "alice", "address": "0x" + "a" * 40})
    for version, value in ((1, "0.80"), (2, "0.85")):
        ledger.append("version_registered", token_id="HOK-1", model_name="m", version=version,
                      principal="alice", data={"benchmark_value": value,
                                               "hokusai_contributor": "0x" + "a" * 40})
    ledger.append("version_registered", token_id="OTHER", model_name="n", version=1,
                  principal="bob", data={"benchmark_value": "0.5"})
    ledger.append("benchmark_measured", token_id="hok-1", model_name="m", version=2,
                  principal="evaluator", data={"value": 0.851})


def verify(database_uri):
    return CliRunner().invoke(main, ["ledger", "verify", "--database-uri", database_uri])


def test_entries_chain_and_verify(ledger, database_uri):
    history(ledger)
    rows = ledger.entries()
    assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS
    assert all(row["prev_hash"] == before["hash"] for before, row in itertools.pairwise(rows))
    assert all(entry_hash(row) == row["hash"] for row in rows)
    assert [row["seq"] for row in ledger.entries(token_id="hok-1")] == [2, 3, 5]
    assert [row["seq"] for row in ledger.entries(token_id="HOK-1", since=2, limit=1)] == [3]
    result = verify(database_uri)
    assert result.exit_code == 0 and "OK: 5 entries" in result.output


@pytest.mark.parametrize("column, value", [("data", '{"benchmark_value":"0.95"}'),
                                           ("principal", "mallory"), ("version", 9)])
def test_verify_names_the_entry_edited_by_hand(ledger, database_uri, column, value):
    history(ledger)
    with ledger.engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE hokusai_ledger SET {column} = :v WHERE seq = 3"),
                           {"v": value})
    result = verify(database_uri)
    assert result.exit_code == 1
    assert "BROKEN at entry 3 (version_registered, HOK-1)" in result.output
    assert "edited" in result.output and "2 entries before it are intact" in result.output


def test_verify_names_a_removed_entry_and_a_rehashed_one(ledger, database_uri):
    history(ledger)
    with ledger.engine.begin() as connection:
        # Rewriting an entry with a matching hash still breaks the next link.
        row = dict(connection.execute(sa.text("SELECT * FROM hokusai_ledger WHERE seq = 2"))
                   .mappings().one())
        row["data"] = '{"benchmark_value":"0.99"}'
        connection.execute(sa.text("UPDATE hokusai_ledger SET data = :d, hash = :h "
                                   "WHERE seq = 2"), {"d": row["data"], "h": entry_hash(row)})
    result = verify(database_uri)
    assert "BROKEN at entry 3" in result.output and "prev_hash" in result.output
    with ledger.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM hokusai_ledger WHERE seq = 1"))
    assert "BROKEN at entry 2" in verify(database_uri).output


def test_export_writes_a_tokens_entries_of_an_intact_chain(ledger, database_uri, tmp_path):
    history(ledger)
    out = tmp_path / "hok-1.jsonl"
    result = CliRunner().invoke(main, ["ledger", "export", "--token", "HOK-1", "--output",
                                       str(out), "--database-uri", database_uri])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["seq"], line["event"]) for line in lines] == [
        (2, "version_registered"), (3, "version_registered"), (5, "benchmark_measured")]
    assert lines[1]["data"] == {"benchmark_value": "0.85", "hokusai_contributor": "0x" + "a" * 40}
    with ledger.engine.begin() as connection:
        connection.execute(sa.text("UPDATE hokusai_ledger SET event = 'x' WHERE seq = 4"))
    result = CliRunner().invoke(main, ["ledger", "export", "--token", "HOK-1",
                                       "--database-uri", database_uri])
    assert result.exit_code == 1 and "broken at entry 4" in result.output


def test_concurrent_appends_keep_one_chain(database_uri):
    engine = get_engine(database_uri)
    migrate.upgrade(engine)
    ledgers = [Ledger(engine) for _ in range(4)]
    start = threading.Barrier(len(ledgers))

    def append(index, chain):
        start.wait()
        for number in range(15):
            chain.append("version_registered", token_id=f"T{index}", version=number + 1)

    threads = [threading.Thread(target=append, args=pair) for pair in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [row["seq"] for row in ledgers[0].entries()] == list(range(1, 61))
    assert Ledger(engine).verify() == (60, None)


def test_the_recorder_appends_contribution_events_of_its_own_app(tmp_path):
    import types

    import flask

    from mlflow_hokusai import signals
    from mlflow_hokusai.plugins.ledger import Recorder

    engine = get_engine(f"sqlite:///{tmp_path / 'recorder.db'}")
    migrate.upgrade(engine)
    mine = types.SimpleNamespace(ledger=Ledger(engine))
    receivers = signals.Receivers(mine)  # as Hokusai.connect connects it
    receivers.connect(signals.contribution_recorded, Recorder(mine))
    try:
        event = {"event": "value_superseded", "token_id": "HOK-9", "model_name": "m", "version": 3,
                 "principal": "evaluator", "data": {"old": "0.9", "new": 0.85}}
        signals.contribution_recorded.send("test", **event)  # no app context: a worker's
        other = flask.Flask("other")
        other.extensions["hokusai"] = object()
        with other.app_context():  # another app's event is not this ledger's
            signals.contribution_recorded.send("test", **{**event, "version": 4})
        own = flask.Flask("own")
        own.extensions["hokusai"] = mine
        with own.app_context():
            signals.contribution_recorded.send("test", **{**event, "version": 5})
    finally:
        receivers.disconnect()
    rows = mine.ledger.entries()
    assert [(row["event"], row["version"]) for row in rows] == [("value_superseded", 3),
                                                              ("value_superseded", 5)]
    assert json.loads(rows[0]["data"]) == {"new": 0.85, "old": "0.9"}
