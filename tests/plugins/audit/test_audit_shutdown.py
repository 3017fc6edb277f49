"""No acknowledged write without its audit record, whatever stops the server
(issue 22): a normal restart (SIGTERM, or SIGINT) right after the answers, gunicorn
recycling its workers, and SIGKILL of every process right after the answers
(the records are replayed from the spools at the next start)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import psutil
import pytest
import requests
import sqlalchemy

from mlflow_hokusai.db.schema import audit_log
from tests.support.servers import BIN, MlflowServer

WRITES = 12
SERVERS = {
    "uvicorn": {},
    # Each worker is recycled after a few requests, in the middle of the writes.
    "gunicorn": {"gunicorn_opts": "--timeout 120 --max-requests 5"},
}


@pytest.fixture(params=sorted(SERVERS))
def deployment(request, tmp_path):
    """What a restart keeps: the database, the spool directory, an admin key."""
    database = f"sqlite:///{tmp_path}/mlflow.db"
    created = subprocess.run([str(BIN / "hokusai"), "keys", "bootstrap", "--json",
                              "--database-uri", database],
                             check=True, capture_output=True, text=True)
    key = created.stdout.split('"key": "')[1].split('"')[0]
    servers = []

    def start() -> MlflowServer:
        server = MlflowServer(tmp_path / "server", database, server=request.param,
                              env={"HOKUSAI_AUDIT_SPOOL_DIR": str(tmp_path / "spool")},
                              **SERVERS[request.param]).start()
        servers.append(server)
        return server

    yield start, database, key, tmp_path / "spool"
    for server in servers:
        server.stop()


def _write(server, key, count) -> set[str]:
    """``count`` acknowledged writes; their request ids."""
    ids = set()
    with requests.Session() as session:
        for _ in range(count):
            answer = session.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                                  json={"name": f"restart-{uuid.uuid4().hex[:8]}"},
                                  headers={"Authorization": f"Bearer {key}"}, timeout=60)
            assert answer.status_code == 200, answer.text
            ids.add(answer.headers["X-Request-ID"])
    return ids


def _recorded(database) -> set[str]:
    engine = sqlalchemy.create_engine(database)
    try:
        with engine.connect() as connection:
            return set(connection.execute(sqlalchemy.select(audit_log.c.request_id)).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_right_after_the_answers_loses_no_record(deployment, stop):
    start, database, key, spool = deployment
    server = start()
    acknowledged = _write(server, key, WRITES)
    server.kill(stop)
    # In the database at exit: the shutdown shipped them, not only spooled them.
    assert acknowledged <= _recorded(database)
    assert not list(spool.rglob("*.spool"))


def _wait_recorded(database, expected: set[str]) -> set[str]:
    deadline = time.monotonic() + 90
    while not expected <= (recorded := _recorded(database)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return recorded


def _workers(server) -> list[psutil.Process]:
    master, = psutil.Process(server.process.pid).children()
    return [child for child in master.children()
            if "resource_tracker" not in " ".join(child.cmdline())]


def test_sigkill_right_after_the_answers_loses_no_record(deployment):
    start, database, key, _ = deployment
    server = start()
    first = _write(server, key, WRITES)
    # The workers only: the server starts new ones, which replay the dead ones' spools.
    for worker in _workers(server):
        worker.send_signal(signal.SIGKILL)
    assert first <= _wait_recorded(database, first)

    second = _write(server, key, WRITES)
    server.kill(signal.SIGKILL)  # every process: the next start replays the spools
    start()
    assert first | second <= _wait_recorded(database, first | second)
