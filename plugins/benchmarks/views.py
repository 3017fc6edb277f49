"""The benchmark routes (each under /api and at the root path)."""

from __future__ import annotations

import flask

from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.benchmarks import measure, schemas, specs
from mlflow_hokusai.rest import RestBlueprint

blueprint = RestBlueprint("hokusai_benchmarks", __name__, tag="benchmarks")


def _hokusai():
    return flask.current_app.extensions["hokusai"]


def _who() -> str | None:
    principal = current_principal()
    return principal.username if principal else None


@blueprint.operation("PUT", "/tokens/<token_id>/benchmark", path_model=schemas.TokenPath,
                     body=schemas.BenchmarkSpec, response=schemas.Benchmark,
                     errors=(400, 403, 404, 413))
def set_benchmark(token_id: str, body: schemas.BenchmarkSpec):
    """Set a token's benchmark (MANAGE on its model); the dataset is copied into
    the server's artifact store and its digest recorded."""
    return specs.set_spec(_hokusai().engine, token_id, body, _who())


@blueprint.operation("GET", "/tokens/<token_id>/benchmark", path_model=schemas.TokenPath,
                     response=schemas.Benchmark, errors=(404,))
def get_benchmark(token_id: str):
    """A token's benchmark."""
    return specs.get_spec(_hokusai().engine, token_id)


@blueprint.operation("POST", "/models/<name>/<version>/benchmark",
                     path_model=schemas.VersionPath, body=schemas.MeasureBody,
                     response=schemas.Measured, errors=(400, 404, 422))
def measure_version(name: str, version: int, body: schemas.MeasureBody):
    """Measure a version on its token's benchmark, in the sandbox; the value
    counts as verified."""
    return measure.measure(_hokusai(), name, version, _who())
