"""``GET /models/{name}/{version}/download``: the version's files as a zip,
streamed while it is made."""

from __future__ import annotations

import re

import flask

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.models import artifacts, registry, schemas
from mlflow_hokusai.plugins.models.blueprint import blueprint
from mlflow_hokusai.rest import Raw


@blueprint.operation("GET", "/models/<name>/<version>/download", path_model=schemas.VersionPath,
                     response=Raw("application/zip", "The model's files, as a zip archive"),
                     errors=(404,))
def download(name: str, version: int):
    """Download the model version's artifacts as a zip archive."""
    registry.get_version(name, version)
    repo, base = artifacts.version_repository(name, version)
    files = artifacts.walk(repo, base)  # listed now, so a failure is still a JSON error
    if not files:
        raise NotFound(f"No files found for model {name}:{version}")
    filename = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}-v{version}") + ".zip"
    return flask.Response(
        flask.stream_with_context(artifacts.zip_stream(repo, files)),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
