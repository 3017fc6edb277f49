"""Health checks that exercise the real backends of this process, each with its
own timeout and measured latency: MLflow's tracking store, registry store and
artifact repository, and Hokusai's database."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import threading
import time
from collections.abc import Callable

import sqlalchemy

from mlflow_hokusai import mlflow_compat

# Hung checks keep a thread until their backend answers; bounding the pool keeps
# a dead backend from growing it, and waiting callers still time out.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="hokusai-health")


@dataclasses.dataclass
class CheckResult:
    name: str
    status: str  # pass, fail, timeout, disabled
    response_time_ms: float
    critical: bool
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "disabled")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"passed": self.passed}


_tracking_store = mlflow_compat.server_tracking_store


def mlflow_connectivity() -> None:
    """A round trip to MLflow's backend database (or its file store)."""
    store = _tracking_store()
    engine = getattr(store, "engine", None)
    if engine is None:
        store.search_experiments(max_results=1)
        return
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT 1"))


def experiments_api() -> None:
    _tracking_store().search_experiments(max_results=1)


def registry_api() -> None:
    mlflow_compat.server_registry_store().search_registered_models(max_results=1)


def artifacts_api() -> None:
    """List the root of the repository the server proxies to (or its default root)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    root = next(filter(None, map(os.environ.get, mlflow_compat.ARTIFACT_ROOT_ENVS)), None)
    if not root or root.startswith("mlflow-artifacts:"):
        raise RuntimeError("no artifact location configured")
    get_artifact_repository(root).list_artifacts()


def hokusai_database(engine) -> Callable[[], None]:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))

    return check


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], None]
    critical: bool


def run_checks(checks: list[Check], timeout: float) -> dict[str, CheckResult]:
    """Run checks concurrently; each gets ``timeout`` seconds from the start."""
    started = time.perf_counter()
    futures = {check.name: (check, _POOL.submit(_timed, check.run)) for check in checks}
    results = {}
    for name, (check, future) in futures.items():
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            elapsed, error = future.result(timeout=remaining)
            status = "pass" if error is None else "fail"
        except concurrent.futures.TimeoutError:
            elapsed, error, status = timeout, f"timed out after {timeout:g} s", "timeout"
        results[name] = CheckResult(name, status, round(elapsed * 1000, 2), check.critical, error)
    return results


def _timed(run: Callable[[], None]) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        run()
        return time.perf_counter() - started, None
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure, it never raises
        message = str(exc).splitlines()[0] if str(exc) else ""
        return time.perf_counter() - started, f"{type(exc).__name__}: {message}"[:300]


class Cached:
    """The last results of ``run``, reused for ``seconds``: a public health route
    costs one round of backend checks per worker per interval, whatever the
    request rate. While one caller refreshes, the others get the previous
    results at once rather than queueing on a slow backend (and holding the
    server's threads); only the very first callers wait."""

    def __init__(self, run: Callable[[], dict], seconds: float, clock=time.monotonic):
        self._run = run
        self.seconds = seconds
        self._clock = clock
        self._refreshing = threading.Lock()
        self._results: dict | None = None
        self._at = 0.0

    def _fresh(self) -> bool:
        return self._results is not None and self._clock() - self._at < self.seconds

    def get(self) -> dict:
        if self._fresh():
            assert self._results is not None
            return self._results
        if not self._refreshing.acquire(blocking=self._results is None):
            assert self._results is not None  # else the acquire blocked
            return self._results  # another caller is refreshing
        try:
            if not self._fresh():
                self._results, self._at = self._run(), self._clock()
            assert self._results is not None
            return self._results
        finally:
            self._refreshing.release()
