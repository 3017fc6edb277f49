"""A circuit breaker around the backend database, fed by SQLAlchemy itself.

Every statement that reaches any engine in this process (MLflow's stores and
Hokusai's own) reports success; every connection-level failure reports
failure. After ``failure_threshold`` consecutive failures the breaker opens and
the pipeline answers MLflow requests at once with 503 instead of letting each
one wait on a dead database. After ``recovery_seconds`` it admits one probe at
a time (half-open) and closes after ``success_threshold`` successes in a row.
Health checks are probes too, so a load balancer polling ``/ready`` closes it.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import sqlalchemy.event
import sqlalchemy.exc
from sqlalchemy.engine import Engine

from mlflow_hokusai import signals
from mlflow_hokusai.errors import ServiceUnavailable
from mlflow_hokusai.pipeline import RequestContext

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# A probe that never reports (a request that touched no database) does not keep
# the breaker half-open forever: another one is admitted after this long.
_PROBE_TIMEOUT_SECONDS = 5.0
_CONNECTION_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)

_logger = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, failure_threshold: int, recovery_seconds: float,
                 success_threshold: int, clock=time.monotonic):
        self.failure_threshold = failure_threshold
        self.recovery_seconds = recovery_seconds
        self.success_threshold = success_threshold
        self._clock = clock
        self._lock = threading.Lock()
        self.state = CLOSED
        self.failure_count = 0
        self.success_count = 0
        self.opened_at: float | None = None
        self.last_failure_time: float | None = None  # wall clock, for display
        self._probe_admitted_at: float | None = None

    def _move(self, new_state: str, reason: str) -> None:
        old, self.state = self.state, new_state
        if old != new_state:
            _logger.warning("Circuit breaker %s -> %s (%s)", old, new_state, reason)
            signals.breaker_changed.send(self, old=old, new=new_state)

    def _half_open_if_due(self) -> None:
        """With the lock held: after the recovery timeout, open becomes half-open,
        whoever notices first (a request, a success, a health check)."""
        if self.state == OPEN and self._clock() - self.opened_at >= self.recovery_seconds:
            self.success_count = 0
            self._probe_admitted_at = None
            self._move(HALF_OPEN, "recovery timeout elapsed")

    def refresh(self) -> None:
        if self.state == OPEN:
            with self._lock:
                self._half_open_if_due()

    def record_success(self) -> None:
        if self.state == CLOSED and self.failure_count == 0:
            return  # the per-statement fast path: nothing to change, no lock
        with self._lock:
            self._half_open_if_due()
            self.failure_count = 0
            if self.state == HALF_OPEN:
                self.success_count += 1
                self._probe_admitted_at = None
                if self.success_count >= self.success_threshold:
                    self._move(CLOSED, f"{self.success_count} successful probes")

    def record_failure(self) -> None:
        with self._lock:
            self.failure_count += 1
            self.last_failure_time = time.time()
            if self.state == HALF_OPEN or (self.state == CLOSED and
                                           self.failure_count >= self.failure_threshold):
                self.opened_at = self._clock()
                self.success_count = 0
                self._move(OPEN, f"{self.failure_count} consecutive failures")

    def allow(self) -> bool:
        """Whether a request may reach the backend now."""
        if self.state == CLOSED:
            return True
        with self._lock:
            self._half_open_if_due()
            if self.state == OPEN:
                return False
            now = self._clock()
            if self._probe_admitted_at is None or \
                    now - self._probe_admitted_at >= _PROBE_TIMEOUT_SECONDS:
                self._probe_admitted_at = now
                return True
            return False

    def release_probe(self) -> None:
        """The admitted probe was refused before reaching the backend (no
        credentials, say): let the next request be the probe."""
        with self._lock:
            self._probe_admitted_at = None

    def retry_after(self) -> int:
        if self.state != OPEN or self.opened_at is None:
            return 1
        return max(1, math.ceil(self.recovery_seconds - (self._clock() - self.opened_at)))

    def reset(self) -> str:
        with self._lock:
            previous = self.state
            self.failure_count = self.success_count = 0
            self.opened_at = self._probe_admitted_at = None
            self._move(CLOSED, "manual reset")
            return previous

    def snapshot(self) -> dict:
        return {"state": self.state, "failure_count": self.failure_count,
                "failure_threshold": self.failure_threshold,
                "last_failure_time": self.last_failure_time,
                "recovery_timeout_seconds": self.recovery_seconds,
                "retry_after_seconds": self.retry_after() if self.state == OPEN else None}


def watch_sqlalchemy(breaker: CircuitBreaker) -> None:
    """Feed the breaker from every engine of this process (class-level events)."""

    def on_error(context):
        if context.is_pre_ping:
            return  # the pool reconnects next; that attempt reports for itself
        if context.is_disconnect or isinstance(context.sqlalchemy_exception, _CONNECTION_ERRORS):
            breaker.record_failure()

    def on_success(conn, cursor, statement, parameters, context, executemany):
        breaker.record_success()

    sqlalchemy.event.listen(Engine, "handle_error", on_error)
    sqlalchemy.event.listen(Engine, "after_cursor_execute", on_success)


class BreakerStep:
    """Pipeline step, ahead of authentication so that not even a key lookup waits
    on a dead database: refuse at once while open. Public routes and the health
    routes that operate the breaker itself are never refused."""

    def __init__(self, breaker: CircuitBreaker, exempt_paths: set[str]):
        self.breaker = breaker
        self.exempt_paths = exempt_paths

    def __call__(self, context: RequestContext, allow_io: bool) -> None:
        if context.public or context.request.path in self.exempt_paths:
            return
        # A rerun of the same request must not use up a second half-open probe.
        if "breaker_admitted" not in context.notes:
            admitted = self.breaker.allow()
            context.notes["breaker_admitted"] = admitted
            context.notes["breaker_probe"] = admitted and self.breaker.state == HALF_OPEN
        if not context.notes["breaker_admitted"]:
            raise ServiceUnavailable(
                "The backend store is unavailable (circuit breaker open); retry later",
                retry_after=self.breaker.retry_after())

    def on_refusal(self, context: RequestContext, error, allow_io: bool) -> None:
        # Otherwise one anonymous request every few seconds would hold the only
        # probe slot and keep everyone else on 503.
        if context.notes.get("breaker_probe"):
            self.breaker.release_probe()
