"""``POST /models/evaluate``."""

from __future__ import annotations

from mlflow_hokusai.plugins.models import evaluation, schemas
from mlflow_hokusai.plugins.models.blueprint import acting_user, blueprint, hokusai


@blueprint.operation("POST", "/models/evaluate", body=schemas.EvaluateBody,
                     response=schemas.Evaluation, errors=(400, 404, 413))
def evaluate(body: schemas.EvaluateBody):
    """Score a version on a CSV or Parquet dataset with scikit-learn; the scores
    are logged to a new run, tagged on the version."""
    return evaluation.evaluate(body, hokusai().settings, acting_user() or "hokusai")
