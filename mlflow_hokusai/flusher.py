"""A buffer's writer thread: started by the first record, it calls ``flush``
once a ``period`` (and at exit), so records are written off the request's
path. Its name tells plugins.health's breaker it is background work."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable


class Flusher:
    def __init__(self, flush: Callable[[], None], period: float, name: str):
        self.flush = flush
        self.period = period
        self.name = name
        self._thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        """Call under the buffer's lock (one thread per buffer)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
            self._thread.start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            self.flush()
