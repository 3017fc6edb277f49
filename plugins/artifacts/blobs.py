"""Content-addressed blobs: what every blob store shares, and the local-disk store.

A blob is named by the SHA-256 of its bytes, under ``<root>/.hokusai/blobs/sha256/ab/<digest>``.
Writers hash while streaming into a temp object; only a finished, hashed temp
object is ever published under a digest's name, so a partial write never
becomes a blob. Readers hash while streaming and fail on any difference.

Publishing and garbage collection follow one protocol (``BlobStore.publish``):
the blob is made fresh (written or touched) before the mapping that refers to
it is written, and the collector never deletes a blob younger than its grace
period. The local store also takes a per-shard lock, which closes the last
window between the collector's age check and its delete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mlflow_hokusai.plugins.artifacts.errors import CorruptArtifact
from mlflow_hokusai.plugins.artifacts.paths import RESERVED

CHUNK_SIZE = 1024 * 1024
DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def blob_name(digest: str) -> str:
    """Where a digest lives below the blob area; two-character shards keep directories small."""
    if not DIGEST.match(digest):
        raise CorruptArtifact("not a SHA-256 digest")
    return f"sha256/{digest[:2]}/{digest}"


class Hasher:
    """SHA-256 and byte count of what passes through."""

    def __init__(self):
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes | bytearray) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)

    def blob(self) -> Blob:
        return Blob(self._sha.hexdigest(), self.size)


def hash_file(path: str) -> Blob:
    hasher = Hasher()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
    return hasher.blob()


def verified(chunks: Iterable[bytes], expected: Blob) -> Iterator[bytes]:
    """Pass ``chunks`` through, raising CorruptArtifact as soon as they are longer than
    ``expected`` and, at their end, if their size or SHA-256 differ."""
    hasher = Hasher()
    for chunk in chunks:
        hasher.update(chunk)
        if hasher.size > expected.size:
            raise CorruptArtifact("stored blob is longer than recorded")
        yield chunk
    got = hasher.blob()
    if got.size != expected.size:
        raise CorruptArtifact("stored blob is truncated")
    if got.digest != expected.digest:
        raise CorruptArtifact("stored blob does not match its SHA-256")


def read_file(path: str) -> Iterator[bytes]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
    except FileNotFoundError:
        raise CorruptArtifact("stored blob is missing") from None
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def copy_verified(chunks: Iterable[bytes], expected: Blob, local_path: str) -> None:
    """Write ``chunks`` to ``local_path`` and prove they are ``expected``; on any
    difference (or error) the partial file is removed and CorruptArtifact raised."""
    try:
        with open(local_path, "wb") as out:
            for chunk in verified(chunks, expected):
                out.write(chunk)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(local_path)
        raise


class PendingBlob(ABC):
    """Bytes on their way into a store: complete and hashed (``blob``), not yet published."""

    blob: Blob

    @abstractmethod
    def discard(self) -> None:
        """Remove what is left of the temp object (idempotent)."""


class PendingWrite(PendingBlob):
    """A pending blob still being streamed into; ``blob`` is known after ``finish``."""

    @abstractmethod
    def write(self, chunk: bytes | bytearray) -> None: ...

    @abstractmethod
    def finish(self) -> Blob: ...

    def write_all(self, stream: BinaryIO) -> PendingWrite:
        """Stream a readable into this pending blob and finish it; discard on error."""
        try:
            while chunk := stream.read(CHUNK_SIZE):
                self.write(chunk)
            self.finish()
        except BaseException:
            self.discard()
            raise
        return self


class BlobStore(ABC):
    root: str  # the store root's Location.base

    @abstractmethod
    def mark_root(self) -> None:
        """Create the root marker (idempotent): URIs below now find this root."""

    @abstractmethod
    def begin(self) -> PendingWrite:
        """A new pending blob to stream bytes into."""

    def put_file(self, local_path: str) -> PendingBlob:
        """A local file on its way in (stores may hash it before sending anything)."""
        with open(local_path, "rb") as handle:
            return self.begin().write_all(handle)

    @abstractmethod
    def publish(self, pending: PendingBlob) -> contextlib.AbstractContextManager[Blob]:
        """Make the blob stored and fresh; the caller writes its mapping inside the
        context, where no collection can remove the blob. Discards the temp object."""

    @abstractmethod
    def read(self, digest: str) -> Iterator[bytes]:
        """The stored bytes (unverified: the caller checks them)."""

    @abstractmethod
    def ages(self) -> Iterator[tuple[str, float]]:
        """(digest, last time it was written or referenced, epoch seconds) of every blob."""

    @abstractmethod
    def delete_if_older(self, digest: str, cutoff: float) -> bool:
        """Delete the blob unless it was written or referenced after ``cutoff``."""

    @abstractmethod
    def stored_bytes(self) -> int:
        """Total size of all blobs (for operators, tests and the benchmark)."""

    @abstractmethod
    def clean_temp(self, cutoff: float) -> int:
        """Remove temp objects of uploads that died before ``cutoff``; how many."""


class LocalPending(PendingWrite):
    def __init__(self, tmp_dir: str):
        os.makedirs(tmp_dir, exist_ok=True)
        self.path = os.path.join(tmp_dir, uuid.uuid4().hex)
        self._file = open(self.path, "xb")  # noqa: SIM115 - open across write() calls
        self._hasher = Hasher()

    def write(self, chunk: bytes | bytearray) -> None:
        self._hasher.update(chunk)
        self._file.write(chunk)

    def finish(self) -> Blob:
        self._file.close()
        self.blob = self._hasher.blob()
        return self.blob

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


class LocalBlobStore(BlobStore):
    """Blobs in ``<root>/.hokusai/blobs``, temp files in ``.hokusai/tmp``, one lock
    file per shard in ``.hokusai/locks``."""

    def __init__(self, root: str):
        self.root = root
        self.area = os.path.join(root, RESERVED)
        self.blobs_dir = os.path.join(self.area, "blobs")

    def mark_root(self) -> None:
        os.makedirs(os.path.join(self.area, "tmp"), exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs_dir, blob_name(digest))

    def begin(self) -> LocalPending:
        return LocalPending(os.path.join(self.area, "tmp"))

    @contextlib.contextmanager
    def _shard_lock(self, digest: str, exclusive: bool):
        locks = os.path.join(self.area, "locks")
        os.makedirs(locks, exist_ok=True)
        fd = os.open(os.path.join(locks, digest[:2]), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def publish(self, pending: LocalPending):  # type: ignore[override]  # only its own
        blob = pending.blob
        target = self.path(blob.digest)
        try:
            with self._shard_lock(blob.digest, exclusive=False):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                # Replacing an existing blob with the same bytes keeps one copy, gives
                # it a fresh mtime for the collector, and heals a damaged copy.
                os.utime(pending.path)
                os.replace(pending.path, target)
                yield blob
        finally:
            pending.discard()

    def read(self, digest: str) -> Iterator[bytes]:
        return read_file(self.path(digest))

    def verified_view(self, blob: Blob, name: str) -> str:
        """A hard link to the blob, named ``name``, whose bytes were just verified.

        MLflow's server serves a repository's local path directly (no temp copy) and
        takes the Content-Type from that file's name, so it gets a link named like
        the artifact: ``.hokusai/views/<digest>/<name>``. It is re-linked to the
        current blob each time (a repaired blob is a new file) and then read once.
        """
        directory = os.path.join(self.area, "views", blob.digest)
        view = os.path.join(directory, name)
        staged = os.path.join(directory, f"{RESERVED}-tmp-{uuid.uuid4().hex}")
        os.makedirs(directory, exist_ok=True)
        try:
            os.link(self.path(blob.digest), staged)
        except FileNotFoundError:
            raise CorruptArtifact("stored blob is missing") from None
        os.replace(staged, view)
        for _ in verified(read_file(view), blob):
            pass
        return view

    def ages(self) -> Iterator[tuple[str, float]]:
        for directory, _, files in os.walk(self.blobs_dir):
            for name in files:
                if DIGEST.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        yield name, os.stat(os.path.join(directory, name)).st_mtime

    def delete_if_older(self, digest: str, cutoff: float) -> bool:
        with self._shard_lock(digest, exclusive=True):
            try:
                if os.stat(self.path(digest)).st_mtime >= cutoff:
                    return False
                os.remove(self.path(digest))
            except FileNotFoundError:
                return False
            # Views are further links to the same bytes: without them the space is freed.
            shutil.rmtree(os.path.join(self.area, "views", digest), ignore_errors=True)
        return True

    def stored_bytes(self) -> int:
        return sum(os.stat(os.path.join(d, f)).st_size
                   for d, _, files in os.walk(self.blobs_dir) for f in files)

    def clean_temp(self, cutoff: float) -> int:
        removed = 0
        tmp_dir = os.path.join(self.area, "tmp")
        for name in os.listdir(tmp_dir) if os.path.isdir(tmp_dir) else ():
            path = os.path.join(tmp_dir, name)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
                    removed += 1
        return removed
