"""Moves audit records from this worker's spool (and dead workers' spools) to
the database, from a background thread.

``record`` is called before the answer to a request leaves the server: it makes
the record durable (spool.py) and returns; the thread then gathers what has
arrived for a short while and stores it in one transaction (writer.py),
retrying with backoff while the database is down: the records wait on disk, so
an outage loses none. At start and every ``scan_seconds`` the thread also
replays the spools of workers that died (SIGKILL, OOM, timeout kill). A clean
exit (uvicorn's lifespan shutdown, gunicorn's worker exit, ``atexit``) ships
what is left, within ``close``'s timeout; what it cannot ship stays spooled.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import signal
import threading
import time
import uuid

from mlflow_hokusai.plugins.audit import sanitize, spool
from mlflow_hokusai.plugins.audit.writer import AuditWriter, Unavailable, dropped

_logger = logging.getLogger(__name__)
_RETRIES = (0.2, 0.5, 1.0, 2.0, 5.0)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


@contextlib.contextmanager
def _stop_signals_deferred():
    """While the last records ship (at most ``close``'s timeout), a second stop
    signal must not cut the flush short: gunicorn's master sends its workers
    SIGQUIT while they already exit on the SIGINT a process manager sent the
    whole group, and the handler's SystemExit would abort this ``atexit`` hook.
    Only the main thread may change handlers (uvicorn's shutdown hook runs in
    another, where no handler raises)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class AuditRecorder:
    def __init__(self, engine, directory, *, linger_seconds: float = 0.2,
                 scan_seconds: float = 10.0):
        self._writer = AuditWriter(engine)
        self._spool = spool.Spool(directory)
        self._linger = linger_seconds
        self._scan = scan_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._wake.set()  # at once: dead workers' spools are replayed at start
        self._thread = threading.Thread(target=self._run, name="hokusai-audit", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(self, row: dict) -> None:
        """Durable when this returns (blocking: call it off the event loop)."""
        fitted = sanitize.storable({**row, "record_id": uuid.uuid4().hex})
        try:
            self._spool.append(fitted)
        except OSError as error:
            # No spool (disk full, read-only): store it now, in this thread.
            _logger.error("Audit spool unavailable (%s): writing the record directly", error)
            try:
                self._writer.write([fitted])
            except Unavailable as down:
                dropped(1, f"no spool and no database ({type(down.__cause__).__name__})")
            return
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Ship what is spooled and stop; idempotent."""
        with _stop_signals_deferred():
            if self._thread.is_alive():
                self._stopping.set()
                self._wake.set()
                self._thread.join(timeout)
            if not self._thread.is_alive():
                self._spool.close()

    def _run(self) -> None:
        next_scan = 0.0
        failures = 0
        while True:
            self._wake.wait(self._scan)
            if not self._stopping.is_set():
                # Gather what arrives shortly after: one transaction for a burst
                # of writes costs the database (and this worker's CPU) far less.
                self._stopping.wait(self._linger)
            self._wake.clear()
            try:
                while self._ship_own():
                    pass
                if time.monotonic() >= next_scan or self._stopping.is_set():
                    self._ship_orphans()
                    next_scan = time.monotonic() + self._scan
                failures = 0
            except Unavailable as error:
                failures += 1
                pause = _RETRIES[min(failures, len(_RETRIES)) - 1]
                _logger.warning("Audit: database unavailable (%s); records stay spooled, "
                                "retrying in %.1f s", type(error.__cause__).__name__, pause)
                if self._stopping.wait(pause):
                    return  # exiting: what is left is replayed later
                self._wake.set()
                continue
            except Exception:  # the thread must survive; records stay spooled
                _logger.exception("Audit: shipping failed; records stay spooled")
            if self._stopping.is_set():
                return

    def _ship_own(self) -> bool:
        """Ship one read of this worker's spool; True if there may be more."""
        records, end, unreadable = self._spool.pending()
        if unreadable:
            dropped(unreadable, "unreadable lines in this worker's spool")
        if not end:
            return False
        self._writer.write(records)
        self._spool.shipped(end)
        return True

    def _ship_orphans(self) -> None:
        own = self._spool.path
        for path, fd in spool.claim_orphans(self._spool.directory, own):
            delete = False
            try:
                records, _, unreadable = spool.decode(spool.read_all(fd))
                self._writer.write(records)
                if unreadable:
                    dropped(unreadable, f"unreadable lines in {path.name}")
                if records:
                    _logger.info("Audit: replayed %d record(s) of %s", len(records), path.name)
                delete = True
            finally:
                spool.release(path, fd, delete)
