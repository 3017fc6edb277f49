"""Evaluation datasets: a CSV or Parquet file from an artifact URI (``runs:/``,
``mlflow-artifacts:/``) or from under ``HOKUSAI_EVALUATION_DATA_ROOT``, never
from anywhere else on the server, and never larger than the size limit."""

from __future__ import annotations

import os
import posixpath
import tempfile
import urllib.parse

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

from mlflow_hokusai.errors import BadRequest, NotFound, PayloadTooLarge
from mlflow_hokusai.plugins.models import artifacts
from mlflow_hokusai.plugins.models.registry import tracking_store

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def _reader(path: str):
    extension = os.path.splitext(path)[1].lower()
    if extension not in READERS:
        raise BadRequest(f"Unsupported dataset format {extension or '(none)'!r}: "
                         "use .csv or .parquet")
    return READERS[extension]


def _check_size(size: int | None, limit_bytes: int) -> None:
    if size is not None and size > limit_bytes:
        raise PayloadTooLarge(f"Dataset is {size} bytes; the limit is {limit_bytes} bytes")


def load(dataset_path: str, settings) -> pd.DataFrame:
    limit = int(settings.evaluation_max_dataset_mb * 2**20)
    parsed = urllib.parse.urlparse(dataset_path)
    reader = _reader(parsed.path or dataset_path)
    scheme = parsed.scheme.lower()
    if scheme in ("runs", "mlflow-artifacts"):
        return _from_artifacts(dataset_path, scheme, reader, limit)
    if scheme and len(scheme) > 1:
        raise BadRequest(f"Dataset URI scheme {scheme!r} is not allowed: use runs:/, "
                         "mlflow-artifacts:/ or a path under the data root")
    return _from_data_root(dataset_path, settings.evaluation_data_root, reader, limit)


def _from_data_root(path: str, root: str | None, reader, limit: int) -> pd.DataFrame:
    if not root:
        raise BadRequest("Local dataset paths are off (HOKUSAI_EVALUATION_DATA_ROOT is unset): "
                         "use a runs:/ or mlflow-artifacts:/ URI")
    real_root = os.path.realpath(root)
    # realpath resolves every symlink, so a link pointing out of the root is
    # judged by where it leads.
    real = os.path.realpath(os.path.join(real_root, path))
    if os.path.commonpath([real, real_root]) != real_root:
        raise BadRequest("Dataset path is outside the data root")
    if not os.path.isfile(real):
        raise NotFound(f"Dataset not found: {path}")
    _check_size(os.path.getsize(real), limit)
    return reader(real)


def _from_artifacts(uri: str, scheme: str, reader, limit: int) -> pd.DataFrame:
    if urllib.parse.urlparse(uri).netloc:
        raise BadRequest("Dataset URIs must not name a host")
    if scheme == "runs":
        try:
            run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
            root = tracking_store().get_run(run_id).info.artifact_uri
        except MlflowException as exc:
            raise NotFound(f"Dataset not found: {exc.message}") from None
    else:
        root, path = "mlflow-artifacts:/", urllib.parse.urlparse(uri).path
    path = (path or "").strip("/")
    if not path or ".." in path.split("/"):
        raise BadRequest("Dataset URI must name a file, without '..'")
    repo, base = artifacts.repository(root)
    remote = posixpath.join(base, path) if base else path
    listed = {f.path: f for f in repo.list_artifacts(posixpath.dirname(remote) or None)}
    if remote not in listed or listed[remote].is_dir:
        raise NotFound(f"Dataset not found: {uri}")
    _check_size(listed[remote].file_size, limit)
    with tempfile.TemporaryDirectory() as scratch:
        local = artifacts.download(repo, remote, scratch)
        _check_size(os.path.getsize(local), limit)
        return reader(local)
