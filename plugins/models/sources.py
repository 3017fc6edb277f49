"""Which model URIs may become a model version's source, and what they resolve to.

Allowed: ``runs:/``, ``models:/`` (a logged model id or a registered version,
alias or stage), ``mlflow-artifacts:/``, or a location under the server's
(non-local) artifact root. Refused: local filesystem paths, ``file:``, hosts in
``runs://``/``models://``, ``..`` anywhere, and every other location: MLflow's
history has several file-read CVEs through model-version sources.
"""

from __future__ import annotations

import dataclasses
import posixpath
import urllib.parse
from typing import NoReturn

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.errors import BadRequest, NotFound, ValidationFailed
from mlflow_hokusai.plugins.auth import version_sources
from mlflow_hokusai.plugins.models import artifacts
from mlflow_hokusai.plugins.models.registry import registry_store, tracking_store


@dataclasses.dataclass(frozen=True)
class Source:
    source: str
    run_id: str | None = None
    model_id: str | None = None


def _refuse(uri: str, why: str) -> NoReturn:
    raise BadRequest(f"Model URI {uri!r} refused: {why}. Use runs:/, models:/, "
                     "mlflow-artifacts:/ or a location under the server's artifact root")


def _check_path(uri: str, path: str) -> None:
    decoded = urllib.parse.unquote(urllib.parse.unquote(path))
    if any(part == ".." for part in decoded.replace("\\", "/").split("/")) or \
            any(c in uri for c in ("#", "\x00")):
        _refuse(uri, "relative path segments")


def resolve(uri: str) -> Source:
    """The source a version made from ``uri`` gets, once the caller may read it
    (judged before anything is created: no model is left behind a refusal)."""
    source = _resolve(uri)
    version_sources.judge(source.source, source.run_id, source.model_id, creating=True)
    return source


def _resolve(uri: str) -> Source:
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    _check_path(uri, parsed.path)
    if scheme in ("", "file") or len(scheme) == 1:  # "C:\\..." parses as scheme "c"
        _refuse(uri, "a local filesystem path")
    if scheme in ("runs", "models", "mlflow-artifacts") and parsed.netloc:
        _refuse(uri, "a URI naming a host")
    if scheme == "runs":
        return _from_run(uri)
    if scheme == "models":
        return _from_models(uri)
    if scheme == "mlflow-artifacts":
        return Source(uri)
    if any(uri.startswith(root) for root in artifacts.server_roots(local=False)):
        return Source(uri)
    _refuse(uri, "not under the server's artifact root")


def _from_run(uri: str) -> Source:
    try:
        run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
    except MlflowException:
        _refuse(uri, "not runs:/<run_id>/<path>")
    # Before the run's models are looked for: a search shows only what the caller may read.
    version_sources.judge(uri, run_id, creating=True)
    path = (path or "").strip("/")
    store = tracking_store()
    try:
        run = store.get_run(run_id)
    except MlflowException:
        raise NotFound(f"Run not found: {run_id}") from None
    # MLflow 3 logs models as logged models named by their artifact path.
    logged = [m for m in store.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}'") if m.name == path]
    if logged:
        model = max(logged, key=lambda m: m.creation_timestamp)
        return Source(f"models:/{model.model_id}", run_id, model.model_id)
    repo, base = artifacts.repository(run.info.artifact_uri)
    if any(posixpath.basename(f.path) == "MLmodel"
           for f in repo.list_artifacts(posixpath.join(base, path) if base else path)):
        return Source(f"{run.info.artifact_uri.rstrip('/')}/{path}", run_id)
    raise NotFound(f"No model at {uri}")


def _from_models(uri: str) -> Source:
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    model_id = mlflow_compat.model_id_in_uri(uri)
    if model_id:
        try:
            model = tracking_store().get_logged_model(model_id)
        except MlflowException:
            raise NotFound(f"Logged model not found: {model_id}") from None
        return Source(uri, model.source_run_id, model_id)
    store = registry_store()
    try:
        name, version = get_model_name_and_version(store, uri)
        mv = store.get_model_version(name, version)
    except MlflowException as exc:
        raise NotFound(f"No model at {uri}: {exc.message}") from None
    return Source(f"models:/{name}/{mv.version}", mv.run_id, getattr(mv, "model_id", None))


NAME_RULE = ("metadata.model_name, else the name in a models:/<name>/<version> (or @alias) URI, "
             "else <model_type or 'model'>-<run id> for a runs:/ URI")


def derive_name(uri: str, model_type: str | None, metadata: dict) -> str:
    """The registered model a ``POST /models/register`` without ``model_name``
    goes to (the API reference's example has none): NAME_RULE, else a 422 that
    says to add it."""
    given = metadata.get("model_name")
    if isinstance(given, str) and given.strip():
        return given.strip()
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "models" and not mlflow_compat.model_id_in_uri(uri):
        name = parsed.path.lstrip("/").split("/")[0].split("@")[0]
        if name:
            return name
    if scheme == "runs":
        try:
            run_id, _ = RunsArtifactRepository.parse_runs_uri(uri)
        except MlflowException:
            run_id = None
        if run_id:
            return f"{(model_type or 'model')[:200]}-{run_id}"
    raise ValidationFailed([{
        "loc": ["body", "model_name"], "type": "missing",
        "msg": f"Field required: add \"model_name\"; it is derived only from {NAME_RULE}"}])
