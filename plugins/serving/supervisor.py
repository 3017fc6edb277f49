"""The one owner of the model worker processes of a host.

Every server worker (uvicorn and gunicorn start several) runs this thread,
but only the one holding an exclusive lock on ``<serving dir>/supervisor.lock``
acts: it reconciles the deployment rows with the processes it runs, once a
``period``. When that server worker dies, the kernel drops its lock and its
workers die with it (``PR_SET_PDEATHSIG``); another server worker takes the
lock and starts them again from the rows, so state lives in the database and
processes are cattle.

A replica whose process exits is started again, up to
``HOKUSAI_SERVING_MAX_RESTARTS`` times per deployment; then the deployment
stays ``failed`` with the reason, until it is deleted and created again (or
its alias moves to another version).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from mlflow_hokusai.plugins.serving import modelfiles, sandbox
from mlflow_hokusai.plugins.serving.store import (
    FAILED,
    READY,
    STARTING,
    Deployment,
    DeploymentStore,
)

_logger = logging.getLogger(__name__)
EXIT_REASONS = {124: "a call ran past the time limit", -9: "killed (memory limit or by hand)"}


@dataclasses.dataclass
class Replica:
    process: subprocess.Popen
    address: str
    log: Path
    started: float
    ready: bool = False


@dataclasses.dataclass
class Running:
    version: int
    replicas: list[Replica]


def _exit_reason(code: int, log: Path) -> str:
    try:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        tail = []
    known = EXIT_REASONS.get(code, "")
    last = tail[-1][:300] if tail else ""
    return f"worker exited with code {code}" + (f" ({known})" if known else "") + \
        (f": {last}" if last else "")


class Supervisor:
    def __init__(self, store: DeploymentStore, settings, directory: Path,
                 resolve: Callable[[Deployment], int], clock=time.monotonic,
                 ticks: tuple[Callable[[], None], ...] = ()):
        self.store = store
        self.settings = settings
        self.directory = directory
        self.resolve = resolve  # deployment row -> the version it should run
        self.clock = clock
        self.ticks = list(ticks)  # other leader-only work (batch jobs, retention)
        self.running: dict[str, Running] = {}
        self.leader = False
        self.limits = sandbox.Limits(settings.serving_timeout_seconds, settings.serving_memory_mb)
        self._http = requests.Session()

    def start(self, period: float = 1.0) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(period,), name="hokusai-serving",
                                  daemon=True)
        thread.start()
        return thread

    def _run(self, period: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = open(self.directory / "supervisor.lock", "a")  # noqa: SIM115 - held for the process's life
        while not self.leader:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.leader = True
            except BlockingIOError:
                time.sleep(2 * period)
        _logger.info("Serving supervisor elected in this worker")
        while True:
            self.step()
            time.sleep(period)

    def step(self) -> None:
        try:
            self.reconcile()
        except Exception:  # the loop must outlive a bad round
            _logger.exception("Serving reconcile failed")
        for tick in self.ticks:
            try:
                tick()
            except Exception:
                _logger.exception("Serving task %s failed", getattr(tick, "__name__", tick))

    def reconcile(self) -> None:
        rows = self.store.list()
        live = {row.id for row in rows}
        for deployment_id in [d for d in self.running if d not in live]:
            self.stop(deployment_id)
            shutil.rmtree(self.directory / deployment_id, ignore_errors=True)
        for row in rows:
            self._keep(row)

    def _keep(self, row) -> None:
        try:
            version = self.resolve(row)
        except Exception as exc:  # noqa: BLE001 - the version or alias is gone
            self.stop(row.id)
            self._fail(row, f"cannot resolve {row.model_name} {row.target}: {exc}")
            return
        running = self.running.get(row.id)
        if running is not None and running.version != version:  # the alias moved
            self.stop(row.id)
            self.store.update(row.id, restarts=0)
            row = dataclasses.replace(row, restarts=0, status=STARTING)
            running = None
        if running is None:
            if row.status == FAILED and row.resolved_version == version:
                return  # stays failed until deployed again
            self._launch(row, version)
            return
        self._watch(row, running)

    def _fail(self, row, reason: str, **values) -> None:
        if row.status != FAILED or row.reason != reason:
            self.store.update(row.id, status=FAILED, reason=reason[:1000], endpoints=None,
                              **values)

    def _launch(self, row, version: int) -> None:
        home = self.directory / row.id / f"v{version}"
        try:
            model_dir = modelfiles.model_copy(row.model_name, version, home)
            columns = modelfiles.signature_columns(model_dir)
            background = modelfiles.background(row.model_name, version, row.reference_dataset,
                                               model_dir, columns, self.settings)
        except Exception as exc:  # noqa: BLE001 - reported on the deployment
            self._fail(row, f"cannot prepare the model files: {exc}", resolved_version=version)
            return
        self.store.update(row.id, status=STARTING, resolved_version=version, endpoints=None,
                          signature=json.dumps(columns) if columns else None)
        replicas = [self._spawn(home, model_dir, background, index)
                    for index in range(row.replicas)]
        self.running[row.id] = Running(version, replicas)

    def _spawn(self, home: Path, model_dir: Path, background, index: int) -> Replica:
        log = home / f"replica-{index}.log"
        process, address = sandbox.spawn(model_dir, background, home, self.limits, log)
        return Replica(process, address, log, self.clock())

    def _watch(self, row, running: Running) -> None:
        crashed: dict = {}  # written with the status: never "ready" beside a new restart
        for index, replica in enumerate(running.replicas):
            code: int | str | None = replica.process.poll()
            if code is None:
                if not replica.ready:
                    replica.ready = self._pings(replica)
                    if not replica.ready and self.clock() - replica.started > \
                            self.settings.serving_start_timeout_seconds:
                        replica.process.kill()
                        replica.process.wait()
                        code = "start timeout"
                if code is None:
                    continue
            reason = (f"worker did not load the model within "
                      f"{self.settings.serving_start_timeout_seconds:g}s"
                      if isinstance(code, str) else _exit_reason(code, replica.log))
            _logger.warning("Deployment %s replica %d: %s", row.id, index, reason)
            restarts = row.restarts + 1
            if restarts > self.settings.serving_max_restarts:
                self.stop(row.id)
                self._fail(row, reason, restarts=restarts)
                return
            row = dataclasses.replace(row, restarts=restarts)
            crashed = {"restarts": restarts, "reason": reason[:1000]}
            home = replica.log.parent
            running.replicas[index] = self._spawn(home, home / "model",
                                                  _existing(home / "background.parquet"), index)
        endpoints = ",".join(r.address for r in running.replicas if r.ready) or None
        status = READY if endpoints else STARTING
        if crashed or (row.status, row.endpoints) != (status, endpoints):
            self.store.update(row.id, status=status, endpoints=endpoints, **crashed)

    def _pings(self, replica: Replica) -> bool:
        try:
            return self._http.get(f"http://{replica.address}/ping", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self, deployment_id: str) -> None:
        running = self.running.pop(deployment_id, None)
        for replica in running.replicas if running else ():
            if replica.process.poll() is None:
                replica.process.kill()
            replica.process.wait()


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None
