"""The audit recorder in-process, on real SQLite and PostgreSQL databases: no
record is lost because of another record's content (issue 14, item 1), and a
worker killed right after answering leaves its records to be replayed (issue 22)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy

from mlflow_hokusai import signals
from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.schema import audit_log
from mlflow_hokusai.plugins.audit import sanitize, spool
from mlflow_hokusai.plugins.audit.recorder import AuditRecorder
from mlflow_hokusai.plugins.audit.writer import AuditWriter

BASE = {"time": 1, "request_id": "r", "principal": "admin", "key_id": "k", "status": 200,
        "action": "POST /api/2.0/mlflow/experiments/create", "path": "/x"}
# What the attacker put in recorded fields: a lone surrogate (both
# databases refuse to encode it), a NUL byte (PostgreSQL text cannot hold one),
# values longer than their columns.
POISON = [{"run_id": "\ud800"}, {"experiment_id": "1\x00"}, {"path": "/a\x00\udfff" * 2000},
          {"model_name": "m" * 5000, "model_version": "\ud83d"}, {"request_id": "\x00"}]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path}/audit.db"
    else:
        uri = request.getfixturevalue("make_postgres_database")()
    engine = sqlalchemy.create_engine(uri)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _rows(engine):
    with engine.connect() as connection:
        return connection.execute(sqlalchemy.select(audit_log).order_by(audit_log.c.id)).all()


@pytest.fixture
def drops():
    counted = []

    def on_dropped(sender, count):
        counted.append(count)

    signals.audit_dropped.connect(on_dropped)
    yield counted
    signals.audit_dropped.disconnect(on_dropped)


def test_poisoned_records_cost_only_their_own_values(engine, tmp_path, drops):
    recorder = AuditRecorder(engine, tmp_path / "spool", linger_seconds=0.5)
    for index in range(20):  # an admin's writes, interleaved with an attacker's
        recorder.record({**BASE, "experiment_id": str(index)})
        recorder.record({**BASE, "principal": "attacker", **POISON[index % len(POISON)]})
    recorder.close()
    rows = _rows(engine)
    assert [r.experiment_id for r in rows if r.principal == "admin"] == \
        [str(index) for index in range(20)]
    attacker = [r for r in rows if r.principal == "attacker"]
    assert len(attacker) == 20 and not drops
    assert {r.run_id for r in attacker} >= {"\ufffd"}
    assert {r.experiment_id for r in attacker} >= {"1\ufffd"}
    assert max(len(r.path) for r in attacker) == 1000


def test_a_refused_batch_is_stored_one_by_one_in_a_strict_form(engine, caplog, drops):
    writer = AuditWriter(engine)
    good = [sanitize.storable({**BASE, "experiment_id": str(i), "record_id": f"g{i}"})
            for i in range(3)]
    # Unsanitized, as if the database refused something sanitizing let through.
    bad = {**good[0], "run_id": "\ud800\x00", "record_id": "bad"}
    writer.write([good[0], bad, *good[1:]])
    rows = _rows(engine)
    assert [r.record_id for r in rows] == ["g0", "bad", "g1", "g2"]
    assert rows[1].run_id == "\\ud800\\x00"
    assert not drops
    assert "storing one by one" in caplog.text


def test_a_record_refused_even_in_strict_form_is_counted_and_logged(engine, caplog, drops,
                                                                    monkeypatch):
    monkeypatch.setattr(sanitize, "strict", lambda row: row)
    writer = AuditWriter(engine)
    good = sanitize.storable({**BASE, "record_id": "good"})
    with caplog.at_level(logging.ERROR):
        writer.write([good, {**good, "run_id": "\ud800", "request_id": "req-9",
                             "record_id": "bad"}])
    assert [r.record_id for r in _rows(engine)] == ["good"]
    assert drops == [1]
    assert "1 audit record(s) dropped: request 'req-9'" in caplog.text


def test_a_replayed_record_is_stored_once(engine):
    writer = AuditWriter(engine)
    rows = [sanitize.storable({**BASE, "record_id": f"r{i}"}) for i in range(3)]
    writer.write(rows[:2])
    writer.write(rows)
    assert [r.record_id for r in _rows(engine)] == ["r0", "r1", "r2"]


_KILLED_WORKER = textwrap.dedent("""
    import os, signal, sys, sqlalchemy
    from mlflow_hokusai.plugins.audit.recorder import AuditRecorder
    # The thread would ship after a minute: the process dies long before.
    recorder = AuditRecorder(sqlalchemy.create_engine(sys.argv[1]), sys.argv[2],
                             linger_seconds=60, scan_seconds=60)
    for index in range(int(sys.argv[3])):
        recorder.record({"time": 1, "request_id": f"req-{index}", "principal": "admin",
                         "status": 200, "action": "POST /x", "path": "/x"})
    print("answered", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_records_of_a_killed_worker_are_replayed_by_the_next(engine, tmp_path):
    directory = tmp_path / "spool"
    # Isolated (-I): the installed package, not a checkout's folder in the working directory.
    killed = subprocess.run([sys.executable, "-I", "-c", _KILLED_WORKER,
                             engine.url.render_as_string(hide_password=False), str(directory),
                             "25"], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL and killed.stdout == "answered\n", killed.stderr
    assert _rows(engine) == []
    assert len(list(directory.glob("*" + spool.SUFFIX))) == 1

    successor = AuditRecorder(engine, directory)  # replays dead workers' spools at start
    successor.close()
    assert sorted(r.request_id for r in _rows(engine)) == sorted(f"req-{i}" for i in range(25))
    assert os.listdir(directory) == []  # replayed spools are deleted, so is an empty own one


def test_a_live_workers_spool_is_not_replayed_by_a_sibling(engine, tmp_path):
    directory = tmp_path / "spool"
    first = spool.Spool(directory)
    first.append({"request_id": "mine"})
    assert list(spool.claim_orphans(directory, own=None)) == []
    first.close()  # not empty: left for a replay
    claimed = list(spool.claim_orphans(directory, own=None))
    assert [path for path, _ in claimed] == [first.path]
    spool.release(*claimed[0], delete=True)


def test_dead_workers_spools_are_replayed_at_start_not_only_at_exit(engine, tmp_path):
    directory = tmp_path / "spool"
    dead = spool.Spool(directory)
    dead.append(sanitize.storable({**BASE, "request_id": "orphaned", "record_id": "o1"}))
    dead.close()  # as the kernel releases a killed worker's lock
    successor = AuditRecorder(engine, directory, scan_seconds=3600)
    try:
        deadline = time.monotonic() + 60
        while not _rows(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.request_id for r in _rows(engine)] == ["orphaned"]
    finally:
        successor.close()


def test_a_failed_append_leaves_no_partial_line(tmp_path, monkeypatch):
    own = spool.Spool(tmp_path / "spool")
    own.append({"request_id": "first"})
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, data[:5])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        own.append({"request_id": "lost"})
    monkeypatch.setattr(os, "write", real_write)
    own.append({"request_id": "third"})
    records, end, unreadable = own.pending()
    assert [r["request_id"] for r in records] == ["first", "third"] and unreadable == 0
    own.shipped(end)
    assert own.path.stat().st_size == 0
    own.close()
    assert not own.path.exists()


def test_without_a_spool_the_record_is_stored_before_the_answer(engine, tmp_path, monkeypatch,
                                                                drops):
    recorder = AuditRecorder(engine, tmp_path / "spool", linger_seconds=3600)

    def no_space(record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recorder._spool, "append", no_space)
    recorder.record({**BASE, "request_id": "direct"})
    assert [r.request_id for r in _rows(engine)] == ["direct"]  # before record() returned
    assert not drops
    recorder.close()
