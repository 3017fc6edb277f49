"""Evaluation datasets: a CSV or Parquet file from an artifact URI (``runs:/``,
``mlflow-artifacts:/``) or from under ``HOKUSAI_EVALUATION_DATA_ROOT``, never
from anywhere else on the server, and never larger than the size limit."""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
import urllib.parse

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

from mlflow_hokusai.errors import BadRequest, NotFound, PayloadTooLarge
from mlflow_hokusai.plugins.models import artifacts
from mlflow_hokusai.plugins.models.registry import registry_store, tracking_store

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
    with tempfile.TemporaryDirectory() as scratch:
        return read(fetch(dataset_path, settings, scratch))


def read(path: str) -> pd.DataFrame:
    """A local CSV or Parquet file as a frame; 400 when it cannot be parsed."""
    try:
        return _reader(path)(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise BadRequest(f"The dataset cannot be read: {str(exc)[:300]}") from None


def fetch(dataset_path: str, settings, scratch: str) -> str:
    """A local path of the dataset (a download into ``scratch`` unless it is
    under the data root), after every check above."""
    limit = int(settings.evaluation_max_dataset_mb * 2**20)
    parsed = urllib.parse.urlparse(dataset_path)
    _reader(parsed.path or dataset_path)
    scheme = parsed.scheme.lower()
    if scheme in ("runs", "mlflow-artifacts"):
        return _from_artifacts(dataset_path, scheme, limit, scratch)
    if scheme and len(scheme) > 1:
        raise BadRequest(f"Dataset URI scheme {scheme!r} is not allowed: use runs:/, "
                         "mlflow-artifacts:/ or a path under the data root")
    return _from_data_root(dataset_path, settings.evaluation_data_root, limit)


def _from_data_root(path: str, root: str | None, limit: int) -> str:
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
    return real


def _from_artifacts(uri: str, scheme: str, limit: int, scratch: str) -> str:
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
    return _fetch_file(repo, posixpath.join(base, path) if base else path, uri, limit, scratch)


def logged_inputs(name: str, version: int):
    """(location, MLflow digest) of each dataset the version's source run logged
    as an input, in order (training data first when logged first)."""
    run_id = registry_store().get_model_version(name, str(version)).run_id
    if not run_id:
        return
    for dataset_input in tracking_store().get_run(run_id).inputs.dataset_inputs:
        try:
            source = json.loads(dataset_input.dataset.source or "{}")
            uri = source.get("uri") or source.get("path")
        except (ValueError, AttributeError):
            continue
        if uri:
            yield uri, dataset_input.dataset.digest


def load_stored(uri: str, settings) -> pd.DataFrame:
    """A dataset file in the server's own artifact stores, named by its location
    (what an MLflow dataset input's source records: ``s3://bucket/root/...`` or
    a path under a local root); any other location is refused."""
    limit = int(settings.evaluation_max_dataset_mb * 2**20)
    _reader(urllib.parse.urlparse(uri).path or uri)
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    with tempfile.TemporaryDirectory() as scratch:
        if scheme in ("runs", "mlflow-artifacts"):
            return read(_from_artifacts(uri, scheme, limit, scratch))
        directory, name = posixpath.split(artifacts.readable(uri).rstrip("/"))
        repo, base = artifacts.repository(directory)
        return read(_fetch_file(repo, posixpath.join(base, name) if base else name, uri, limit,
                                scratch))


def _fetch_file(repo, remote: str, uri: str, limit: int, scratch: str) -> str:
    """The file downloaded into ``scratch``, refused past the size limit."""
    listed = {f.path: f for f in repo.list_artifacts(posixpath.dirname(remote) or None)}
    if remote not in listed or listed[remote].is_dir:
        raise NotFound(f"Dataset not found: {uri}")
    _check_size(listed[remote].file_size, limit)
    local = artifacts.download(repo, remote, scratch)
    _check_size(os.path.getsize(local), limit)
    return local
