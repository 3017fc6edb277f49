"""The path -> digest mapping: one small JSON object per logical artifact path.

Mapping objects sit exactly where MLflow's own repositories put the files
(``<uri>/<path>``), so listing a directory is listing mapping objects, a
repository for a sub-URI sees its own subtree, and nothing but the blobs needs
the store root. Each holds ``{"sha256": ..., "size": ...}``; sizes shown to
clients come from it. Names starting with ``.hokusai`` are never listed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass

from mlflow_hokusai.plugins.artifacts.blobs import DIGEST, Blob
from mlflow_hokusai.plugins.artifacts.errors import ArtifactNotFound, CorruptArtifact, PathConflict
from mlflow_hokusai.plugins.artifacts.paths import RESERVED, UnsafePath, join

# A mapping is about 100 bytes; anything much larger is not one of ours.
MAX_MAPPING_BYTES = 4096


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    size: int | None


def encode(blob: Blob) -> bytes:
    return json.dumps({"sha256": blob.digest, "size": blob.size}).encode()


def decode(data: bytes, path: str) -> Blob:
    try:
        fields = json.loads(data)
        digest, size = fields["sha256"], fields["size"]
        if DIGEST.match(digest) and isinstance(size, int) and size >= 0:
            return Blob(digest, size)
    except (ValueError, TypeError, KeyError):
        pass
    raise CorruptArtifact(f"the mapping of '{path}' is damaged")


def hidden(name: str) -> bool:
    return name.startswith(RESERVED)


class Manifest(ABC):
    @abstractmethod
    def put(self, path: str, blob: Blob) -> None: ...

    @abstractmethod
    def get(self, path: str) -> Blob:
        """The blob of a file path; ArtifactNotFound if there is none."""

    @abstractmethod
    def list(self, path: str) -> list[Entry]:
        """Entries directly under a directory path; [] for a file or a missing path."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file's mapping or a directory's, recursively ('' is everything)."""

    @abstractmethod
    def walk(self) -> Iterator[Blob]:
        """Every mapping below the manifest's base (the collector's mark phase)."""


class LocalManifest(Manifest):
    def __init__(self, base: str):
        self.base = base

    def _locate(self, path: str) -> str:
        """The mapping's file path, once its directory is proven inside the base
        after resolving symlinks (a planted link must not lead writes elsewhere)."""
        full = os.path.join(self.base, path) if path else self.base
        real_base = os.path.realpath(self.base)
        parent = os.path.realpath(os.path.dirname(full)) if path else real_base
        if parent != real_base and not parent.startswith(real_base + os.sep):
            raise UnsafePath("the path leads outside the repository (symlink)")
        return full

    def put(self, path: str, blob: Blob) -> None:
        full = self._locate(path)
        try:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            self._locate(path)  # again: the directories now exist
            tmp = os.path.join(os.path.dirname(full), f"{RESERVED}-tmp-{uuid.uuid4().hex}")
            with open(tmp, "xb") as out:
                out.write(encode(blob))
            try:
                os.replace(tmp, full)  # atomic; replaces a symlink itself, never its target
            except BaseException:
                os.remove(tmp)
                raise
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise PathConflict(f"'{path}' conflicts with an existing file or directory") from None

    def get(self, path: str) -> Blob:
        if not path:
            raise ArtifactNotFound(path)
        full = self._locate(path)
        try:
            # O_NOFOLLOW: a symlink in place of a mapping is refused, not read through.
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            raise ArtifactNotFound(path) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArtifactNotFound(path)
        with os.fdopen(fd, "rb") as handle:
            return decode(handle.read(MAX_MAPPING_BYTES + 1), path)

    def _is_dir(self, full: str) -> bool:
        try:
            return stat.S_ISDIR(os.lstat(full).st_mode)
        except OSError:
            return False

    def directory(self, path: str) -> str | None:
        """The real directory of a directory path (for MLflow's "is a directory" answer)."""
        full = self._locate(path)
        return full if self._is_dir(full) else None

    def list(self, path: str) -> list[Entry]:
        full = self._locate(path)
        if not self._is_dir(full):
            return []
        entries = []
        with os.scandir(full) as scan:
            for item in scan:
                if hidden(item.name) or item.is_symlink():
                    continue
                if item.is_dir(follow_symlinks=False):
                    entries.append(Entry(item.name, True, None))
                else:
                    entries.append(Entry(item.name, False, self.get(join(path, item.name)).size))
        return entries

    def delete(self, path: str) -> None:
        full = self._locate(path)
        if path:
            targets = [full]
        elif self._is_dir(full):
            targets = [os.path.join(full, name) for name in os.listdir(full) if not hidden(name)]
        else:
            targets = []
        for target in targets:
            with contextlib.suppress(FileNotFoundError):
                if self._is_dir(target):
                    shutil.rmtree(target)
                else:
                    os.remove(target)

    def walk(self) -> Iterator[Blob]:
        for directory, dirs, files in os.walk(self.base):
            dirs[:] = [d for d in dirs if not hidden(d)]
            for name in files:
                full = os.path.join(directory, name)
                if not hidden(name) and not os.path.islink(full):
                    yield self.get(os.path.relpath(full, self.base))


class S3Manifest(Manifest):
    """Mappings as small objects under the repository's key prefix."""

    def __init__(self, objects, prefix: str, pool: Executor):
        self.objects = objects  # an s3.S3Objects
        self.prefix = prefix
        self.pool = pool

    def _key(self, path: str) -> str:
        return join(self.prefix, path)

    def _dir_prefix(self, path: str) -> str:
        key = self._key(path)
        return key + "/" if key else ""

    def put(self, path: str, blob: Blob) -> None:
        self.objects.put_bytes(self._key(path), encode(blob), content_type="application/json")

    def get(self, path: str) -> Blob:
        data = self.objects.get_bytes(self._key(path), MAX_MAPPING_BYTES + 1) if path else None
        if data is None:
            raise ArtifactNotFound(path)
        return decode(data, path)

    def list(self, path: str) -> list[Entry]:
        dirs: list[str] = []
        files: list[str] = []
        for name, is_dir in self.objects.list_level(self._dir_prefix(path)):
            if not hidden(name):
                (dirs if is_dir else files).append(name)
        blobs = self.pool.map(lambda name: self.get(join(path, name)), files)
        return [Entry(name, True, None) for name in dirs] + \
            [Entry(name, False, blob.size) for name, blob in zip(files, blobs, strict=True)]

    def _visible_keys(self, prefix: str) -> Iterator[str]:
        for key in self.objects.list_keys(prefix):
            relative = key[len(prefix):]
            if not any(hidden(part) for part in relative.split("/")):
                yield key

    def delete(self, path: str) -> None:
        keys = list(self._visible_keys(self._dir_prefix(path)))
        if path:
            keys.append(self._key(path))
        self.objects.delete_keys(keys)

    def walk(self) -> Iterator[Blob]:
        prefix = self._dir_prefix("")
        keys = list(self._visible_keys(prefix))
        yield from self.pool.map(lambda key: self.get(key[len(prefix):]), keys)
