"""``POST /models/evaluate``: score a registered version on a dataset with
scikit-learn and log the scores to a new run linked to the version. The
version's code runs in the sandbox (plugins/sandbox); only scoring runs here."""

from __future__ import annotations

import math
import os
import tempfile
import time

from mlflow_hokusai.errors import BadRequest, ValidationFailed
from mlflow_hokusai.plugins import sandbox
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT
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


_TARGET_NAMES = ("target", "label", "y")


def infer_target(columns, input_schema) -> str:
    """The dataset column of true values when the request names none (the API
    reference's example has no ``target``): the one column the model's
    signature does not take as input, else a column named target, label or y."""
    columns = [str(c) for c in columns]
    inputs = set(input_schema.input_names()) if input_schema is not None and \
        input_schema.has_input_names() else set()
    rest = [c for c in columns if c not in inputs]
    if inputs and len(rest) == 1:
        return rest[0]
    for name in _TARGET_NAMES:
        if name in columns:
            return name
    raise ValidationFailed([{"loc": ["body", "target"], "type": "missing", "msg": (
        "Field required: add \"target\", the dataset column holding the true values "
        f"(columns: {', '.join(columns)}); it is inferred only when the model's signature "
        "leaves exactly one column out, or from a column named target, label or y")}])


def signature_target(name: str, version: int, columns) -> str:
    """The target inferred from the version's signature: only the MLmodel file
    (YAML) is read here, no model code."""
    from mlflow.models import Model

    repo, base = artifacts.version_repository(name, version)
    remote = f"{base}/MLmodel" if base else "MLmodel"
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = artifacts.download(repo, remote, directory)
        except Exception:  # noqa: BLE001 - no MLmodel: a model without a signature
            path = None
        schema = Model.load(path).get_input_schema() if path and os.path.exists(path) else None
    return infer_target(columns, schema)


def predict(name: str, version: int, features, settings) -> tuple[object, str]:
    """(predictions as an array, sandbox mode): the version's files are copied
    into a sandbox job and its code runs there, never in this process."""
    import numpy as np

    repo, base = artifacts.version_repository(name, version)
    predictions, mode = sandbox.predict(
        lambda directory: artifacts.download_all(repo, artifacts.walk(repo, base), directory),
        features, settings)
    return np.asarray(predictions), mode


def log_run(mv, metrics: dict[str, float], dataset_path: str, target: str, user: str) -> str:
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

    require("registered_model", body.model_name, EDIT)
    mv = get_version(body.model_name, body.model_version)
    frame = datasets.load(body.dataset_path, settings)
    if body.target is not None and body.target not in frame.columns:
        raise BadRequest(f"Target column {body.target!r} is not in the dataset; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    if frame.empty:
        raise BadRequest("The dataset has no rows")
    target = body.target or signature_target(mv.name, int(mv.version), frame.columns)
    y_true = frame[target].to_numpy()
    y_pred, mode = predict(mv.name, int(mv.version), frame.drop(columns=[target]), settings)
    try:
        metrics, average = score(body.metrics, y_true, y_pred)
    except ValueError as exc:  # e.g. a regression metric on string labels
        raise BadRequest(f"Cannot compute the metrics on this dataset: {exc}") from None
    run_id = log_run(mv, metrics, body.dataset_path, target, user)
    registry_store().set_model_version_tag(mv.name, mv.version,
                                           ModelVersionTag(EVALUATION_RUN_TAG, run_id))
    return {"model_name": mv.name, "model_version": int(mv.version), "run_id": run_id,
            "target": target, "rows": len(frame), "average": average, "metrics": metrics,
            "sandbox": mode}
