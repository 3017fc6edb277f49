"""Loaded programs of this server worker: per program version, a small pool of
idle ProgramProcesses; at most ``size`` versions, the least recently used
evicted (its processes stopped). Keys are resolved versions, never aliases:
each request resolves its alias first, so after an alias moves the next run
loads the version it names now, and the old one ages out."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow_hokusai.plugins.dspy.process import ProgramProcess

Key = tuple[str, int]


class ProgramCache:
    def __init__(self, size: int, start: Callable[[Key], ProgramProcess], per_key: int = 4):
        self.size = size
        self.per_key = per_key  # idle processes kept per version; more are stopped
        self.start = start  # key -> a new process
        self.lock = threading.Lock()
        self.idle: collections.OrderedDict[Key, list] = collections.OrderedDict()
        self.descriptions: dict[Key, dict] = {}
        self.hits = self.misses = 0

    def keys(self) -> list[Key]:
        with self.lock:
            return list(self.idle)

    def _touch(self, key: Key) -> list:
        """The key's idle list, now the most recently used; evicts past ``size``."""
        stopped = []
        pool = self.idle.setdefault(key, [])
        self.idle.move_to_end(key)
        while len(self.idle) > self.size:
            old, processes = self.idle.popitem(last=False)
            stopped += processes
        for process in stopped:
            process.stop()
        return pool

    @contextlib.contextmanager
    def checkout(self, key: Key):
        """A process of ``key`` for one call: an idle one, else a new one; it
        goes back to the pool afterwards unless it died or was stopped."""
        with self.lock:
            pool = self._touch(key)
            process = pool.pop() if pool else None
            self.hits += process is not None
            self.misses += process is None
        if process is None or not process.alive:
            process = self.start(key)
            with self.lock:
                self.descriptions[key] = process.description
        try:
            yield process
        finally:
            with self.lock:
                if process.alive and key in self.idle and len(self.idle[key]) < self.per_key:
                    self.idle[key].append(process)
                    process = None
            if process is not None:
                process.stop()

    def describe(self, key: Key) -> dict:
        """The program's signatures, loading it when this worker has not yet."""
        with self.lock:
            known = self.descriptions.get(key)
        if known is not None:
            return known
        with self.checkout(key) as process:
            return process.description

    def clear(self) -> int:
        """Stop every idle process; the number of programs dropped."""
        with self.lock:
            dropped = list(self.idle.items())
            self.idle.clear()
            self.descriptions.clear()
        for _, processes in dropped:
            for process in processes:
                process.stop()
        return len(dropped)
