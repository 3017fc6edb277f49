"""``POST /models/evaluate``: score a registered version on a dataset with
scikit-learn and log the scores to a new run linked to the version."""

from __future__ import annotations

import math
import tempfile
import time

from mlflow_hokusai.errors import BadRequest
from mlflow_hokusai.plugins.models import artifacts, datasets
from mlflow_hokusai.plugins.models.registry import get_version, registry_store, tracking_store

EVALUATION_RUN_TAG = "hokusai.evaluation_run_id"  # on the version: its latest evaluation


def _metric(name: str):
    from sklearn import metrics

    return getattr(metrics, name)


def _classification(name: str):
    def score(y_true, y_pred, average):
        return _metric(name)(y_true, y_pred, average=average, zero_division=0)
    return score


# name -> (needs an averaging mode, scorer(y_true, y_pred, average))
METRICS = {
    "accuracy": (False, lambda t, p, a: _metric("accuracy_score")(t, p)),
    "balanced_accuracy": (False, lambda t, p, a: _metric("balanced_accuracy_score")(t, p)),
    "precision": (True, _classification("precision_score")),
    "recall": (True, _classification("recall_score")),
    "f1_score": (True, _classification("f1_score")),
    "mse": (False, lambda t, p, a: _metric("mean_squared_error")(t, p)),
    "rmse": (False, lambda t, p, a: math.sqrt(_metric("mean_squared_error")(t, p))),
    "mae": (False, lambda t, p, a: _metric("mean_absolute_error")(t, p)),
    "r2": (False, lambda t, p, a: _metric("r2_score")(t, p)),
}


def averaging(y_true) -> str:
    """``binary`` for 0/1 (or boolean) labels, else ``weighted`` (multi-class)."""
    return "binary" if set(y_true.tolist()) <= {0, 1} else "weighted"


def score(names: list[str], y_true, y_pred) -> tuple[dict[str, float], str | None]:
    average = averaging(y_true) if any(METRICS[name][0] for name in names) else None
    return {name: float(METRICS[name][1](y_true, y_pred, average)) for name in names}, average


def _predict(name: str, version: int, features):
    import mlflow.pyfunc

    repo, base = artifacts.version_repository(name, version)
    with tempfile.TemporaryDirectory() as directory:
        artifacts.download_all(repo, artifacts.walk(repo, base), directory)
        model = mlflow.pyfunc.load_model(directory)
        predictions = model.predict(features)
    if hasattr(predictions, "to_numpy"):
        predictions = predictions.to_numpy()
    if getattr(predictions, "ndim", 1) > 1:
        predictions = predictions[:, 0] if predictions.shape[1] == 1 else predictions
    return predictions


def _log_run(mv, metrics: dict[str, float], dataset_path: str, target: str, user: str) -> str:
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    store = tracking_store()
    experiment_id = store.get_run(mv.run_id).info.experiment_id if mv.run_id else "0"
    now = int(time.time() * 1000)
    run_name = f"evaluate-{mv.name}-v{mv.version}"
    run = store.create_run(experiment_id, user, now, [
        RunTag("hokusai.evaluation.model_name", mv.name),
        RunTag("hokusai.evaluation.model_version", str(mv.version)),
        RunTag("hokusai.evaluation.source_run_id", mv.run_id or ""),
    ], run_name)
    run_id = run.info.run_id
    store.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                    params=[Param("dataset_path", dataset_path[:6000]),
                            Param("target", target)], tags=[])
    store.update_run_info(run_id, RunStatus.FINISHED,
                          int(time.time() * 1000), run_name)
    return run_id


def evaluate(body, settings, user: str) -> dict:
    from mlflow.entities.model_registry import ModelVersionTag

    mv = get_version(body.model_name, body.model_version)
    frame = datasets.load(body.dataset_path, settings)
    if body.target not in frame.columns:
        raise BadRequest(f"Target column {body.target!r} is not in the dataset; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    if frame.empty:
        raise BadRequest("The dataset has no rows")
    y_true = frame[body.target].to_numpy()
    y_pred = _predict(mv.name, int(mv.version), frame.drop(columns=[body.target]))
    try:
        metrics, average = score(body.metrics, y_true, y_pred)
    except ValueError as exc:  # e.g. a regression metric on string labels
        raise BadRequest(f"Cannot compute the metrics on this dataset: {exc}") from None
    run_id = _log_run(mv, metrics, body.dataset_path, body.target, user)
    registry_store().set_model_version_tag(mv.name, mv.version,
                                           ModelVersionTag(EVALUATION_RUN_TAG, run_id))
    return {"model_name": mv.name, "model_version": int(mv.version), "run_id": run_id,
            "rows": len(frame), "average": average, "metrics": metrics}
