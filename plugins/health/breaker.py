"""A circuit breaker around the backend database, fed by SQLAlchemy itself.

Whose database: every engine that serves requests in this process, MLflow's
tracking and registry stores and Hokusai's tables (key lookups) alike. A
request needs all of them, so one breaker per worker guards them together.
The audit writer's background thread is not reported: its retries would count
one outage many times, and its successes must not hide a failing store.

Every statement from a request or a health check reports success; a failure
reports only when it says the database is unreachable or unavailable
(``is_unavailability``): a statement the caller's own input made the database
refuse (too many joins or bound parameters, say) is that request's error, and
counting it would let any key holder open the breaker for everyone. After
``failure_threshold`` consecutive failures the breaker opens and the pipeline
answers MLflow requests at once with 503 instead of letting each one wait on a
dead database. After ``recovery_seconds`` it admits one probe at
a time (half-open) and closes after ``success_threshold`` successes in a row.
Health checks are probes too, so a load balancer polling ``/ready`` closes it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

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
# Threads whose statements the breaker ignores: the audit writer and serving's
# supervisor, prediction log and batch jobs (plugins.serving), monitoring's
# prediction recorder. They retry on
# their own; counted, a poller failing every second through an outage kept the
# breaker open (and every request refused) long after the database was back.
BACKGROUND_THREADS = frozenset({"hokusai-audit", "hokusai-serving", "hokusai-prediction-log",
                                "hokusai-monitoring"})
BACKGROUND_THREAD_PREFIXES = ("hokusai-batch-",)


def _in_background() -> bool:
    name = threading.current_thread().name
    return name in BACKGROUND_THREADS or name.startswith(BACKGROUND_THREAD_PREFIXES)
# SQLSTATE classes and codes of an unavailable PostgreSQL: connection exception,
# insufficient resources (too many connections, disk full, out of memory),
# shutdown or start-up in progress, system/I-O error.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "58")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P05"})
# MySQL client/server codes: can't connect, server gone away, lost connection,
# too many connections, shutdown in progress, lock wait timeout.
_UNAVAILABLE_MYSQL_CODES = frozenset({1040, 1053, 1205, 2002, 2003, 2005, 2006, 2013})
# What drivers say without a code (libpq at connect time, SQLite always).
_UNAVAILABLE_MESSAGES = (
    "connection refused", "could not connect", "could not translate host name",
    "no route to host", "timeout expired", "timed out", "server closed the connection",
    "connection already closed", "connection reset", "broken pipe", "terminating connection",
    "the database system is", "lost connection", "gone away", "too many connections",
    "database is locked", "unable to open database file", "disk i/o error",
    "database or disk is full",
)

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


def _sqlstate(error) -> str | None:
    # psycopg2 calls it pgcode, psycopg 3 sqlstate.
    return getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)


def is_unavailability(error: BaseException, is_disconnect: bool = False) -> bool:
    """Whether a database error says the database cannot be reached or cannot
    serve now (rather than refusing this statement)."""
    if is_disconnect:
        return True
    original = getattr(error, "orig", None) or error
    if isinstance(error, sqlalchemy.exc.InterfaceError):
        return True  # the driver lost its connection
    if not isinstance(error, sqlalchemy.exc.OperationalError):
        return False  # integrity, programming, data errors: the statement's own
    state = _sqlstate(original)
    if state:
        return state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or state in _UNAVAILABLE_SQLSTATES
    code = original.args[0] if original.args and isinstance(original.args[0], int) else None
    if code is not None:
        return code in _UNAVAILABLE_MYSQL_CODES
    message = str(original).lower()
    return any(text in message for text in _UNAVAILABLE_MESSAGES)


def watch_sqlalchemy(breaker: CircuitBreaker) -> Callable[[], None]:
    """Feed the breaker from every engine of this process (class-level events);
    returns the function that stops it."""

    def on_error(context):
        if context.is_pre_ping or _in_background():
            return  # a pre-ping: the pool reconnects next, that attempt reports for itself
        if is_unavailability(context.sqlalchemy_exception, context.is_disconnect):
            breaker.record_failure()

    def on_success(conn, cursor, statement, parameters, context, executemany):
        if not _in_background():
            breaker.record_success()

    listeners = (("handle_error", on_error), ("after_cursor_execute", on_success))
    for name, listener in listeners:
        sqlalchemy.event.listen(Engine, name, listener)
    def remove() -> None:
        for pair in listeners:
            sqlalchemy.event.remove(Engine, *pair)
    return remove


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
