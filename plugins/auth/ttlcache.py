"""A small per-worker cache whose entries expire: what a worker may trust for
at most a second (grants, owners) without asking the database again."""

from __future__ import annotations

import threading
import time
from typing import Any

_MAX_ENTRIES = 50_000


class TtlCache:
    def __init__(self, ttl_seconds: float | None, clock=time.monotonic):
        self.ttl = ttl_seconds  # None: entries never expire (facts that cannot change)
        self.clock = clock
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, key) -> tuple[bool, Any]:  # each cache holds values of its own kind
        entry = self._entries.get(key)
        if entry is None or (self.ttl is not None and self.clock() - entry[0] > self.ttl):
            return False, None
        return True, entry[1]

    def put(self, key, value) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self.clock(), value)

    def drop(self, key) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
