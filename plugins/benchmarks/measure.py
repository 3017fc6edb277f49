"""``POST /models/{name}/{version}/benchmark``: the registry measures a version
on its token's stored dataset, in the sandbox, and records the value, the
dataset's digest, the evaluation run and the MLflow version; then the version's
``benchmark_*`` tags say so and ``contribution_recorded`` is sent."""

from __future__ import annotations

import contextvars
import tempfile

import mlflow
from mlflow.entities.model_registry import ModelVersionTag

from mlflow_hokusai import signals
from mlflow_hokusai.errors import BadRequest, NotFound
from mlflow_hokusai.plugins.benchmarks import specs, verified
from mlflow_hokusai.plugins.models import datasets, evaluation
from mlflow_hokusai.plugins.models.registry import get_version, registry_store
from mlflow_hokusai.plugins.store import reader, tags
from mlflow_hokusai.plugins.store.access import read

# Set while the registry writes a measured value's tags, so the evaluator
# hook (hooks.py) does not record the same value a second time.
measuring: contextvars.ContextVar[bool] = contextvars.ContextVar("hokusai_measuring",
                                                                 default=False)


def _token_of(name: str, number: int) -> dict:
    row = read(lambda session: reader.version(session, name, number))
    token_key = row and row.get("token_key")
    token = read(lambda session: reader.token(session, token_key)) if token_key else None
    if token is None:
        raise BadRequest(f"Version {number} of model '{name}' carries no token "
                         "(hokusai_token_id): only tokenized versions are benchmarked")
    return token


def measure(hokusai, name: str, number: int, principal: str | None) -> dict:
    mv = get_version(name, number)
    token = _token_of(mv.name, int(mv.version))
    spec = specs.load(hokusai.engine, token["token_key"])
    if spec is None:
        raise NotFound(f"Token '{token['token_id']}' has no benchmark to measure on")
    with tempfile.TemporaryDirectory() as scratch:
        frame = datasets.read(specs.fetch_copy(spec, scratch))
    target = spec["target_column"]
    y_pred, mode = evaluation.predict(mv.name, int(mv.version), frame.drop(columns=[target]),
                                      hokusai.settings)
    try:
        metrics, _ = evaluation.score([spec["metric"]], frame[target].to_numpy(), y_pred)
    except ValueError as exc:
        raise BadRequest(f"Cannot compute {spec['metric']} on the predictions: {exc}") from None
    value = metrics[spec["metric"]]
    run_id = evaluation.log_run(mv, metrics, spec["dataset_uri"], target, principal or "hokusai")
    facts = {"metric": spec["metric"], "dataset_digest": spec["dataset_digest"],
             "run_id": run_id, "mlflow_version": mlflow.__version__}
    previous = verified.record(hokusai.engine, mv.name, int(mv.version), value,
                               verified.MEASURED, principal=principal, **facts)
    _tag(mv.name, mv.version, {tags.BENCHMARK_VALUE: repr(value),
                               tags.BENCHMARK_METRIC: spec["metric"],
                               tags.BENCHMARK_DIRECTION: spec["direction"],
                               evaluation.EVALUATION_RUN_TAG: run_id})
    event = {"token_id": token["token_id"], "model_name": mv.name, "version": int(mv.version),
             "principal": principal}
    if previous is not None and previous != value:
        signals.contribution_recorded.send(
            "hokusai.benchmarks", event="value_superseded", **event,
            data={"old_value": previous, "new_value": value, "verified": True, "run_id": run_id})
    signals.contribution_recorded.send("hokusai.benchmarks", event="benchmark_measured",
                                       **event, data={"value": value, **facts})
    return {**facts, "model_name": mv.name, "version": int(mv.version),
            "token_id": token["token_id"], "value": value, "sandbox": mode, "rows": len(frame),
            "superseded_value": previous if previous != value else None}


def _tag(name: str, version, values: dict[str, str]) -> None:
    store = registry_store()
    token = measuring.set(True)
    try:
        for key, value in values.items():
            store.set_model_version_tag(name, version, ModelVersionTag(key, value))
    finally:
        measuring.reset(token)


