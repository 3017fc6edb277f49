"""``make serve`` as a first-time user runs it: the printed key works, Ctrl+C
stops everything it started, a busy port is refused. Runs the Makefile from
this checkout with the test's own environment (``VENV``, ``SKIP_INSTALL``)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests
from click.testing import CliRunner

from mlflow_hokusai import cli, serve
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
KEY = re.compile(r"\|\s+(hk_live_[0-9A-Za-z]+)\s+\|")


def make_serve(data: Path, port: int) -> subprocess.Popen:
    # A session of its own: the test's Ctrl+C reaches make and what it runs in
    # the foreground, as a terminal's does.
    return subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"VENV={sys.prefix}", "SKIP_INSTALL=1",
         f"PORT={port}", f"DATA={data}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


def lines_of(process: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def read_until(lines: queue.Queue, marker: str, timeout: float = 900) -> str:
    seen = []
    while True:
        line = lines.get(timeout=timeout)
        assert line is not None, "make serve ended early:\n" + "".join(seen)
        seen.append(line)
        if marker in line:
            return "".join(seen)


def test_first_run_prints_a_working_key_and_stops_within_seconds(tmp_path):
    port, data = free_port(), tmp_path / "data"
    process = make_serve(data, port)
    try:
        shown = read_until(lines_of(process), "Stop: Ctrl+C")
        key = KEY.search(shown).group(1)
        assert f"Hokusai is serving http://127.0.0.1:{port}" in shown
        answer = requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
                              params={"max_results": 5},
                              headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
                            timeout=30).status_code == 401
        assert key not in (data / "server.log").read_text(errors="replace")

        started = _tree_once_jobs_consume(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        # Generous: the bug was 16-40 s; the server's group gets SIGTERM at once.
        process.wait(timeout=10)
        assert serve.running(psutil.wait_procs(started, timeout=1)[1]) == []
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))  # free again
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            os.killpg(process.pid, signal.SIGKILL)


def _tree_once_jobs_consume(pid: int, within: float = 120) -> list[psutil.Process]:
    """The server's processes once MLflow's job runner has started its huey
    consumers (seconds after the server answers), so the stop is seen to end them."""
    deadline = time.monotonic() + within
    while True:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        with contextlib.suppress(psutil.Error):
            if any("huey" in " ".join(p.cmdline()) for p in tree):
                return tree
        assert time.monotonic() < deadline, "MLflow's job consumers never started"
        time.sleep(0.5)


def test_a_busy_port_fails_naming_the_port_and_PORT(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = make_serve(tmp_path / "data", port)
        output, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert f"Port {port} on 127.0.0.1 is not free" in output
    assert f"PORT={port + 1}" in output
    assert not (tmp_path / "data").exists()  # nothing made, no key minted


def test_later_runs_say_how_to_mint_a_new_admin_key(tmp_path):
    url = "http://127.0.0.1:5000"
    first = serve.welcome(url, "hk_live_x", "sqlite:///d/mlflow.db", tmp_path / "server.log")
    assert "hk_live_x" in first and f"Open {url} and log in with it." in first
    later = serve.welcome(url, None, "sqlite:///d/mlflow.db", tmp_path / "server.log")
    assert "hk_live_" not in later and "Lost it?" in later
    assert "keys create --name admin2" in later and "--scopes admin" in later
    assert "--database-uri sqlite:///d/mlflow.db" in later
    widths = {len(line) for line in later.splitlines()}
    assert len(widths) == 1  # a closed box


def test_the_admin_key_is_minted_once(tmp_path):
    url = f"sqlite:///{tmp_path}/mlflow.db"
    assert serve.first_admin_key(url).startswith("hk_live_")
    assert serve.first_admin_key(url) is None


def test_a_failure_after_the_start_leaves_no_server_behind(tmp_path, monkeypatch):
    # The server runs in a session of its own: a crash of `hokusai serve` after
    # the start (here: minting the key) must not leave it holding the port.
    started: list[serve.Server] = []

    class Recorded(serve.Server):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    def broken(database_url):
        raise RuntimeError("database gone")

    monkeypatch.setattr(serve, "Server", Recorded)
    monkeypatch.setattr(serve, "first_admin_key", broken)
    handlers = {number: signal.getsignal(number) for number in serve._STOP_SIGNALS}
    port = free_port()
    try:
        with pytest.raises(RuntimeError, match="database gone"):
            serve.serve(tmp_path / "data", "127.0.0.1", port, 1)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert started and started[0].process.poll() is not None
    assert serve.running(started[0].tree) == []
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # free again


def test_hokusai_serve_refuses_a_busy_port_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli.main, ["serve", "--data", str(tmp_path / "d"),
                                               "--port", str(port)])
    assert result.exit_code == 1
    assert f"hokusai serve: Port {port} on 127.0.0.1 is not free" in result.output
