"""Each worker's durable, append-only file of audit records on their way to the
database.

A record is appended and fsynced before the answer to its request leaves the
server, so an acknowledged write's record survives the worker's death (SIGKILL,
OOM, a timeout kill) and, on persistent storage, the machine's. A worker holds
an exclusive ``flock`` on its own file for as long as it lives: a file nobody
holds belongs to a dead worker, and any worker of any server on the same
database may claim it, replay it and delete it. One directory per database.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path

import sqlalchemy as sa

_logger = logging.getLogger(__name__)
SUFFIX = ".spool"


def directory_for(database_uri: str, base: str | None) -> Path:
    """``base`` (default: the temp dir) / one directory per database: a spool is
    replayed into the database its records belong to (the password is left out,
    so changing it keeps the spool)."""
    url = sa.engine.make_url(database_uri)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=os.path.abspath(url.database))  # the same file from any cwd
    shown = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(shown.encode()).hexdigest()[:16]
    return Path(base or Path(tempfile.gettempdir()) / "hokusai-audit") / digest


def encode(record: dict) -> bytes:
    # ensure_ascii: a line is plain ASCII whatever the record holds.
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")


def decode(data: bytes) -> tuple[list[dict], int, int]:
    """Records of the complete lines in ``data``, the bytes they span, and how
    many lines could not be read (a worker killed in the middle of a write
    leaves a partial line; its request was never answered)."""
    end = data.rfind(b"\n") + 1
    records, unreadable = [], 0
    for line in data[:end].splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            unreadable += 1
    return records, end, unreadable


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


class Spool:
    """This process's spool file, opened on first use (a forked child opens its own)."""

    def __init__(self, directory: Path, read_limit: int = 1 << 20):
        self.directory = Path(directory)
        self._read_limit = read_limit
        self._mutex = threading.Lock()  # appends, truncation
        self._syncing = threading.Lock()
        self._appended = self._synced = 0  # appends made, appends known on disk
        self._fd: int | None = None
        self._pid: int | None = None
        self.path: Path | None = None
        self._shipped = 0  # bytes of the file already in the database
        self._size = 0  # bytes of the file

    def _file(self) -> int:
        """The descriptor of the file this process opened (its callers open it first)."""
        assert self._fd is not None
        return self._fd

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Locked before it gets the name siblings look for, so none claims it as orphaned.
        fresh = self.directory / (name + ".new")
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = self.directory / (name + SUFFIX)
        os.rename(fresh, self.path)
        directory_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)  # the file's name survives a machine crash too
        finally:
            os.close(directory_fd)
        self._fd, self._pid, self._shipped, self._size = fd, os.getpid(), 0, 0

    def append(self, record: dict) -> None:
        line = encode(record)
        with self._mutex:
            if self._pid != os.getpid():
                self._open()
            written = 0
            try:
                while written < len(line):
                    written += os.write(self._file(), line[written:])
            except OSError:
                # A partial line (disk full) would merge with the next one.
                os.ftruncate(self._file(), self._size)
                raise
            self._size += written
            self._appended += 1
            mine, fd = self._appended, self._file()
        # Group commit: one fdatasync covers every append before it, so
        # concurrent requests share a sync instead of queueing for one each.
        with self._syncing:
            if self._synced >= mine:
                return
            with self._mutex:
                target = self._appended
            os.fdatasync(fd)
            self._synced = target

    def pending(self) -> tuple[list[dict], int, int]:
        """Records not yet shipped (up to the read limit), the offset after them,
        and the count of unreadable lines among them."""
        with self._mutex:
            if self._pid != os.getpid():
                return [], 0, 0
            data = os.pread(self._file(), self._read_limit, self._shipped)
        records, end, unreadable = decode(data)
        return records, self._shipped + end, unreadable

    def shipped(self, offset: int) -> None:
        """Everything before ``offset`` is in the database; an emptied file is
        truncated (appends hold the mutex, so none is lost)."""
        with self._mutex:
            self._shipped = offset
            if self._size == offset:
                os.ftruncate(self._file(), 0)
                self._shipped = self._size = 0

    def close(self) -> None:
        """Release the file; it is deleted when empty, else left to be replayed."""
        with self._mutex:
            if self._fd is None or self._pid != os.getpid():
                return
            if os.fstat(self._fd).st_size == 0:
                assert self.path is not None  # named when opened
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            os.close(self._fd)
            self._fd = self._pid = None


def claim_orphans(directory: Path, own: Path | None):
    """Yield ``(path, fd)`` for each spool file no live worker holds, locked; the
    caller replays it, then ``release(path, fd, delete=True)``."""
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path == own or path.suffix not in (SUFFIX, ".new"):
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # another worker replayed it meanwhile
            continue
        if not _lock(fd):
            os.close(fd)
            continue
        if path.suffix == ".new" or not os.path.exists(path):
            # A worker died between creating and naming its file (it holds
            # nothing), or a sibling has just replayed and deleted it.
            release(path, fd, delete=True)
            continue
        yield path, fd


def read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def release(path: Path, fd: int, delete: bool) -> None:
    try:
        if delete:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    finally:
        os.close(fd)
