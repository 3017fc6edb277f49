"""A model version's files, read through the server's artifact store as MLflow's
own ``/model-versions/get-artifact`` handler reads them, and streamed as a zip."""

from __future__ import annotations

import io
import os
import posixpath
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.errors import BadRequest, NotFound
from mlflow_hokusai.plugins.models.registry import registry_store

CHUNK = 1 << 20
repository = mlflow_compat.artifact_repository  # (repository, path of a URI inside it)


def server_roots(*, local: bool) -> list[str]:
    """The artifact roots ``mlflow server`` exported to its workers (with their
    trailing slash), local ones only with ``local``."""
    roots = []
    for name in mlflow_compat.ARTIFACT_ROOT_ENVS:
        root = os.environ.get(name, "")
        scheme = urllib.parse.urlparse(root).scheme
        if not root or scheme == "mlflow-artifacts":
            continue
        if scheme in ("", "file"):
            if local:
                roots.append(os.path.join(os.path.abspath(_local_path(root)), ""))
        else:
            roots.append(root.rstrip("/") + "/")
    return roots


def _local_path(uri: str) -> str:
    return urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri


def _under_server_roots(uri: str) -> bool:
    if any(part == ".." for part in urllib.parse.unquote(uri).replace("\\", "/").split("/")):
        return False
    scheme = urllib.parse.urlparse(uri).scheme
    candidate = os.path.abspath(_local_path(uri)) if scheme in ("", "file") else uri
    return any(candidate.startswith(root) for root in server_roots(local=True))


def readable(uri: str) -> str:
    """Where the server reads a version's files from its source or storage
    location: ``runs:/`` and ``models:/<id>`` through the server's own tracking
    store (MLflow's resolvers would open a client of their own, on whatever
    tracking URI the process has), then only the proxied ``mlflow-artifacts:``
    store or a location under the server's artifact roots. Anything else a
    version names (``dbfs:/``, another host, a local path) is refused: the server
    reads its own stores only."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    from mlflow_hokusai.plugins.models.registry import tracking_store

    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "runs" and not parsed.netloc:
        try:
            run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
            run = tracking_store().get_run(run_id)
        except MlflowException:
            raise NotFound(f"No run behind the model's source {uri}") from None
        return readable(posixpath.join(run.info.artifact_uri, (path or "").strip("/")))
    model_id = mlflow_compat.model_id_in_uri(uri) if scheme == "models" else None
    if model_id and not parsed.netloc:
        try:
            return readable(tracking_store().get_logged_model(model_id).artifact_location)
        except MlflowException:
            raise NotFound(f"No logged model behind the model's source {uri}") from None
    if (scheme == "mlflow-artifacts" and not parsed.netloc) or _under_server_roots(uri):
        return uri
    raise BadRequest(f"This server does not read model files from "
                     f"{scheme + ':' if scheme else 'local'} locations outside its artifact "
                     "stores, where this version's source is")


def version_repository(name: str, version: int):
    """Judged here whatever the route's scope (an evaluation is no read route;
    the store judges only reads by itself)."""
    from mlflow_hokusai.plugins.auth import version_sources

    uri = registry_store().get_model_version_download_uri(name, str(version))
    version_sources.judge(uri, creating=False)
    return repository(readable(uri))


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
