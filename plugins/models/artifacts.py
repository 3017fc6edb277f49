"""A model version's files, read through the server's artifact store as MLflow's
own ``/model-versions/get-artifact`` handler reads them, and streamed as a zip."""

from __future__ import annotations

import io
import os
import posixpath
import tempfile
import zipfile
from typing import Iterator

from mlflow.server import handlers

from mlflow_hokusai.plugins.models.registry import registry_store

CHUNK = 1 << 20


def repository(uri: str):
    """(repository, path of ``uri`` inside it). ``mlflow-artifacts:`` URIs map
    to ``--artifacts-destination`` (the server is their proxy)."""
    if handlers._is_servable_proxied_run_artifact_root(uri):
        path = handlers._get_proxied_run_artifact_destination_path(uri)
        path = handlers._get_workspace_scoped_repo_path_if_enabled(path)
        return handlers._get_artifact_repo_mlflow_artifacts(), path
    return handlers._get_artifact_repository_for_uri(uri), ""


def version_repository(name: str, version: int):
    return repository(registry_store().get_model_version_download_uri(name, str(version)))


def walk(repo, base: str) -> list[tuple[str, str]]:
    """(path relative to ``base``, path in the repository) of every file, sorted."""
    files, pending = [], [base]
    while pending:
        directory = pending.pop()
        for info in repo.list_artifacts(directory or None):
            if info.is_dir:
                pending.append(info.path)
            else:
                relative = posixpath.relpath(info.path, base) if base else info.path
                files.append((relative, info.path))
    return sorted(files)


def download(repo, remote: str, directory: str) -> str:
    return repo.download_artifacts(remote, dst_path=directory)


def download_all(repo, files, directory: str) -> None:
    for relative, remote in files:
        target = os.path.join(directory, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            os.replace(download(repo, remote, scratch), target)


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink that hands its bytes to a generator.
    ZipFile writes data descriptors to such a stream, so nothing is rewound."""

    def __init__(self):
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_stream(repo, files) -> Iterator[bytes]:
    """The zip of ``files`` made while it is sent: one file on disk and about
    one chunk in memory at a time, never the whole archive."""
    pipe = _Pipe()
    with tempfile.TemporaryDirectory() as scratch:
        archive = zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED)
        for relative, remote in files:
            local = download(repo, remote, scratch)
            with open(local, "rb") as source, \
                    archive.open(relative, "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield pipe.drain()
            os.remove(local)
            yield pipe.drain()
        archive.close()
    yield pipe.drain()
