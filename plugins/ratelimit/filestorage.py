"""A ``limits`` storage in a SQLite file: exact limits across the worker
processes of one machine without Redis.

``limits`` keeps its memory storage per process, so with N workers each
counted alone and a key got N times its limit. This storage is the default,
in a file of the server's own directory (``mlflow_hokusai.serverdir``): every
worker of one server counts in the same file, each check-and-count one
``BEGIN IMMEDIATE`` transaction (SQLite serializes writers), so the moving
window is exact, as the Redis storage's Lua script makes it. Redis stays the
way to share limits between servers. The file holds nothing that must survive
a crash, so it is written without fsync.

A moving window counts the events of its key in the last ``expiry`` seconds.
Counting them with ``count(*)`` cost time in proportion to the limit (a
10,000/minute key at 100 requests/s scanned 6,000 index entries twice per
request); instead ``windows`` holds each key's number of stored events,
kept equal to it by triggers (so every writer of the file, and the sweep,
keep it right), and a check deletes its key's expired events first: a check
costs a few index lookups whatever the limit.

``hokusai+sqlite:///path/limits.db`` names a file explicitly (servers on one
machine may share one).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from limits.storage import MovingWindowSupport, Storage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (key TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_key_at ON events (key, at);
CREATE INDEX IF NOT EXISTS events_expires ON events (expires);
CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, size INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS events_added AFTER INSERT ON events
    BEGIN UPDATE windows SET size = size + 1 WHERE key = NEW.key; END;
CREATE TRIGGER IF NOT EXISTS events_removed AFTER DELETE ON events
    BEGIN UPDATE windows SET size = size - 1 WHERE key = OLD.key; END;
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL,
                                     expires REAL NOT NULL);
"""
# Expired rows of keys nobody asks about again are swept every this many writes.
_SWEEP_EVERY = 1000


class SqliteFileStorage(Storage, MovingWindowSupport):
    # limits' Storage declares it an attribute; the registry reads it from the class.
    STORAGE_SCHEME = ["hokusai+sqlite"]  # noqa: RUF012

    def __init__(self, uri: str, wrap_exceptions: bool = False, **_):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.path = uri.split("://", 1)[1]  # hokusai+sqlite:///abs/path -> /abs/path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._writes = 0

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross a fork: each worker opens its own.
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            connection.executescript(_SCHEMA)
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _write(self, work):
        """``work(connection, now)`` inside one write transaction."""
        with self._lock:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                result = work(connection, now)
                self._writes += 1
                if self._writes % _SWEEP_EVERY == 0:
                    connection.execute("DELETE FROM events WHERE expires < ?", (now,))
                    connection.execute("DELETE FROM windows WHERE size <= 0")
                    connection.execute("DELETE FROM counters WHERE expires < ?", (now,))
                connection.execute("COMMIT")
                return result
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _read(self, sql: str, *args):
        with self._lock:
            return self._connect().execute(sql, args).fetchone()

    # -- moving window

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False

        def acquire(connection, now):
            row = connection.execute("SELECT size FROM windows WHERE key = ?", (key,)).fetchone()
            if row is None:  # a key not seen since the last sweep (or a file of before)
                connection.execute("INSERT INTO windows SELECT ?1, count(*) FROM events "
                                   "WHERE key = ?1", (key,))
                row = connection.execute("SELECT size FROM windows WHERE key = ?",
                                         (key,)).fetchone()
            expired = connection.execute("DELETE FROM events WHERE key = ? AND at < ?",
                                         (key, now - expiry)).rowcount
            if row[0] - expired + amount > limit:
                return False
            connection.executemany("INSERT INTO events VALUES (?, ?, ?)",
                                   [(key, now, now + expiry)] * amount)
            return True

        return self._write(acquire)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        # One statement, one snapshot: the stored size minus what expired since
        # the key's last check (few), or a count where the key has no size yet.
        oldest, count = self._read(
            "SELECT (SELECT min(at) FROM events WHERE key = ?1 AND at >= ?2), "
            "coalesce((SELECT size FROM windows WHERE key = ?1) - "
            "(SELECT count(*) FROM events WHERE key = ?1 AND at < ?2), "
            "(SELECT count(*) FROM events WHERE key = ?1 AND at >= ?2))", key, now - expiry)
        return (oldest if count else now), count

    # -- counters

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        def increment(connection, now):
            return connection.execute(
                "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = CASE WHEN expires < ?4 THEN excluded.value"
                " ELSE value + excluded.value END,"
                " expires = CASE WHEN expires < ?4 THEN excluded.expires ELSE expires END "
                "RETURNING value", (key, amount, now + expiry, now)).fetchone()[0]

        return self._write(increment)

    def get(self, key: str) -> int:
        row = self._read("SELECT value FROM counters WHERE key = ? AND expires >= ?",
                         key, time.time())
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._read("SELECT expires FROM counters WHERE key = ?", key)
        return row[0] if row else time.time()

    def check(self) -> bool:
        return self._read("SELECT 1") == (1,)

    def reset(self) -> int | None:
        def delete_all(connection, now):
            deleted = connection.execute("DELETE FROM events").rowcount + \
                connection.execute("DELETE FROM counters").rowcount
            connection.execute("DELETE FROM windows")
            return deleted

        return self._write(delete_all)

    def clear(self, key: str) -> None:
        def delete(connection, now):
            connection.execute("DELETE FROM events WHERE key = ?", (key,))
            connection.execute("DELETE FROM windows WHERE key = ?", (key,))
            connection.execute("DELETE FROM counters WHERE key = ?", (key,))

        self._write(delete)
