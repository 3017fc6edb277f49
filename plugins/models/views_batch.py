"""``POST /models/batch``: every operation is checked (shape, size limit, the
versions it names exist) before any runs; then each runs on its own, and one
failing does not hide the others' outcomes."""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from mlflow_hokusai.errors import (
    FromMlflow,
    HokusaiError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT, MANAGE
from mlflow_hokusai.plugins.models import registry, schemas
from mlflow_hokusai.plugins.models.blueprint import blueprint, hokusai


def _delete(name: str, version: int, op) -> None:
    registry.delete(name, version)
    hokusai().predictions.delete(name, version)


ACTIONS = {
    "transition_stage": lambda n, v, op: registry.transition(n, v, op.stage, op.archive_existing),
    "set_tag": lambda n, v, op: registry.set_tag(n, v, op.key, op.value),
    "delete_tag": lambda n, v, op: registry.delete_tag(n, v, op.key),
    "update_description": lambda n, v, op: registry.update(n, v, op.description, {}),
    "delete": _delete,
}


def _check(operations) -> None:
    limit = hokusai().settings.models_batch_max_operations
    if len(operations) > limit:
        raise PayloadTooLarge(f"{len(operations)} operations; the limit is {limit}")
    for op in operations:  # the whole batch is refused if any operation would be
        require("registered_model", schemas.parse_ref(op.model)[0],
                MANAGE if op.action == "delete" else EDIT)
    issues: list = []
    seen: dict = {}
    for index, op in enumerate(operations):
        if op.model not in seen:
            try:
                registry.get_version(*schemas.parse_ref(op.model))
                seen[op.model] = None
            except NotFound as missing:
                seen[op.model] = missing.detail
        if seen[op.model]:
            issues.append({"loc": ["body", "operations", index, "model"],
                           "msg": seen[op.model], "type": "not_found"})
    if issues:
        raise ValidationFailed(issues)


def _run(index: int, op) -> dict:
    name, version = schemas.parse_ref(op.model)
    result = {"index": index, "action": op.action, "model": op.model}
    try:
        ACTIONS[op.action](name, version, op)
    except (HokusaiError, MlflowException) as exc:
        error = exc if isinstance(exc, HokusaiError) else FromMlflow(exc)
        return {**result, "status": "error", "status_code": error.status,
                "detail": str(error.detail)}
    return {**result, "status": "ok", "status_code": 200, "detail": None}


@blueprint.operation("POST", "/models/batch", body=schemas.BatchBody,
                     response=schemas.BatchOut, errors=(413,))
def batch(body: schemas.BatchBody):
    """Run several registry operations; each result is reported."""
    _check(body.operations)
    results = [_run(index, op) for index, op in enumerate(body.operations)]
    succeeded = sum(r["status"] == "ok" for r in results)
    return {"results": results, "succeeded": succeeded, "failed": len(results) - succeeded}
