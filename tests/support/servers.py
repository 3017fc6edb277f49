"""Real ``mlflow server`` processes for the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """One ``mlflow server`` subprocess (uvicorn or gunicorn) and its workers."""

    def __init__(self, workdir: Path, backend_uri: str, *, server: str = "uvicorn",
                 workers: int = 2, app_name: str | None = "hokusai",
                 env: dict[str, str] | None = None, artifacts: str | None = None,
                 gunicorn_opts: str = "--timeout 120"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.backend_uri = backend_uri
        self.server = server
        self.workers = workers
        self.gunicorn_opts = gunicorn_opts
        self.app_name = app_name
        # Browser sessions are on by default and need a secret shared by the workers.
        self.env = {"HOKUSAI_SESSION_SECRET": "test-session-secret-" + workdir.name, **(env or {})}
        self.artifacts = artifacts or str(self.workdir / "artifacts")
        self.gunicorn_opts = gunicorn_opts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "server.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
               "--backend-store-uri", self.backend_uri,
               "--artifacts-destination", self.artifacts, "--workers", str(self.workers)]
        if self.app_name:
            cmd += ["--app-name", self.app_name]
        if self.server == "gunicorn":
            cmd += ["--gunicorn-opts", self.gunicorn_opts]
        return cmd

    def start(self, timeout: float = 120) -> MlflowServer:
        # MLflow's job runner starts eight processes per server (about 1.5 GB and
        # several CPU-seconds); no test uses MLflow's jobs, and the suite starts
        # many servers on a 2-core machine. A test may turn it back on in ``env``.
        # MLflow fetches the AI gateway's model catalog from GitHub per provider,
        # with retries; this machine has no internet, so a call would hang for
        # minutes: the bundled catalog only (an empty URI turns the fetch off).
        # Each worker keeps one idle connection per pool (MLflow's stores' and
        # Hokusai's follow these): the suite runs servers side by side on the
        # shared PostgreSQL, whose 100 connections the default pools (5 idle
        # each) used up. Bursts still open up to 10 more per pool.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
               "MLFLOW_MODEL_CATALOG_URI": "", "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "1",
               **self.env}
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                     "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        # A restart appends to the same log: only what this start writes counts.
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.workdir, env=env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            # Every worker says it is ready before the first request: requests sent
            # while workers boot wait in the listen backlog after their client gave
            # up, and a worker recycled after a few requests (gunicorn's
            # --max-requests) spent them all on that backlog, again and again.
            if not self._workers_ready():
                time.sleep(0.3)
                continue
            try:
                status = requests.get(self.url + "/version", timeout=2).status_code
            except requests.RequestException:
                status = None
            # Any answer means a worker is serving (basic-auth guards /version,
            # a low public limit refuses it).
            if status in (200, 401, 429):
                return self
            if status is not None and status >= 500:
                self.stop()
                raise RuntimeError(f"server answers {status}:\n{self.log_tail()}")
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log_tail()}")

    def _workers_ready(self) -> bool:
        if self.workers == 1:
            return True
        from mlflow_hokusai.app import READY_MESSAGE

        marker = READY_MESSAGE if self.app_name == "hokusai" else "Application startup complete"
        with open(self.log_path, "rb") as log:
            log.seek(getattr(self, "_log_start", 0))
            return log.read().decode(errors="replace").count(marker) >= self.workers

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self, sig: int, timeout: float = 60) -> None:
        """Send ``sig`` to the server and all its workers at once, as a deploy's
        process manager or the OOM killer does, and wait until they are gone."""
        tree = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(
            recursive=True)]
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=timeout)
        psutil.wait_procs(tree, timeout=timeout)

    def stop(self) -> None:
        """Stop the server and every process it started: MLflow's job consumers
        run in sessions of their own, out of reach of a process-group signal."""
        if self.process is None or self.process.poll() is not None:
            return
        tree = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for child in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
