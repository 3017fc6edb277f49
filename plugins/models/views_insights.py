"""Comparison of two versions, and one version's metrics."""

from __future__ import annotations

from mlflow_hokusai.plugins.models import insights, registry, schemas
from mlflow_hokusai.plugins.models.blueprint import blueprint, hokusai


@blueprint.operation("GET", "/models/compare", query=schemas.CompareQuery,
                     response=schemas.Comparison, errors=(404,))
def compare(query: schemas.CompareQuery):
    """The metrics of each version's source run, their deltas and a recommendation."""
    return insights.compare(schemas.parse_ref(query.model1), schemas.parse_ref(query.model2))


def production_metrics(name: str, version: int) -> dict:
    summary = hokusai().predictions.summary(name, version)
    return {"total_predictions": summary["total_predictions"],
            "last_prediction_at": registry.when(summary["last"]),
            "latency_ms": summary["latency_ms"]}


@blueprint.operation("GET", "/models/<name>/<version>/metrics", path_model=schemas.VersionPath,
                     response=schemas.VersionMetrics, errors=(404,))
def version_metrics(name: str, version: int):
    """Training, validation and other metrics of the source run, and production
    metrics from recorded predictions."""
    mv = registry.get_version(name, version)
    return {"name": mv.name, "version": int(mv.version), "run_id": mv.run_id or None,
            **insights.by_phase(insights.run_metrics(mv.run_id)),
            "production_metrics": production_metrics(mv.name, int(mv.version))}
