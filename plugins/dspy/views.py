"""The ``/api/v1/dspy`` routes. Without the ``dspy`` package every one answers
501 naming the extra to install (the routes still exist, so the route table,
the OpenAPI document and the coverage test see them)."""

from __future__ import annotations

import flask

from mlflow_hokusai.errors import HokusaiError, NotFound, PermissionDenied, Unsupported
from mlflow_hokusai.pipeline import current_context, current_principal
from mlflow_hokusai.plugins.auth import scopes
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT, READ
from mlflow_hokusai.plugins.auth.scopes import ADMIN
from mlflow_hokusai.plugins.dspy import schemas
from mlflow_hokusai.plugins.models import registry
from mlflow_hokusai.rest import RestBlueprint

blueprint = RestBlueprint("hokusai_dspy", __name__, tag="dspy")
PREFIX = "/v1/dspy"


def service():
    """The plugin's DspyService; 501 when dspy is not installed."""
    dspy = flask.current_app.extensions["hokusai"].dspy
    if dspy is None or dspy.executor is None:
        raise Unsupported("DSPy programs need the dspy package on the server: "
                          "pip install 'mlflow-hokusai[dspy]'")
    return dspy


def _principal() -> str | None:
    principal = current_principal()
    return principal.username if principal else None


def _is_admin() -> bool:
    principal = current_principal()
    return principal is None or ADMIN in principal.scopes


def _audit() -> None:
    """Runs are audited although they need only READ: they run code and spend
    the server's LM."""
    context = current_context.get()
    if context is not None:
        context.notes["audit"] = True


def _readable(name: str) -> bool:
    try:
        require("registered_model", name, READ)
        return True
    except HokusaiError:
        return False


def _experiment(name: str | None) -> str | None:
    """The id of the experiment the request names for its traces, created
    (owned by the caller) when missing; None for the server's shared one.
    Only with the ``write`` scope (a ``read`` key never writes, nor creates, an
    experiment of its choosing) and EDIT on an existing one. The trace goes
    to this id, the one checked: never to whatever holds the name later."""
    if name is None:
        return None
    principal = current_principal()
    if principal is not None and not scopes.grants(principal.scopes, scopes.WRITE):
        raise PermissionDenied(scopes.WRITE)
    store = registry.tracking_store()
    experiment = store.get_experiment_by_name(name)
    if experiment is None:
        # A reserved name is refused here (the store) unless the key is an admin's.
        return store.create_experiment(name)
    require("experiment", experiment.experiment_id, EDIT)
    return experiment.experiment_id


@blueprint.operation("GET", PREFIX + "/programs", query=schemas.ProgramQuery,
                     response=schemas.ProgramList, api_only=True)
def list_programs(query: schemas.ProgramQuery):
    """Registered models whose default version is a DSPy program, that the caller may read."""
    return service().programs(query.max_results, query.page_token, _readable)


@blueprint.operation("POST", PREFIX + "/execute", body=schemas.ExecuteBody,
                     response=schemas.ExecutionOut, errors=(403, 404, 422, 501),
                     api_only=True)
def execute(body: schemas.ExecuteBody):
    """Run a registered DSPy program once, in its sandboxed process, within ``timeout``."""
    dspy = service()
    _audit()
    key = dspy.resolve(body.program_id, READ)
    dspy.executor.check(key, body.inputs, ["body", "inputs"])
    experiment_id = _experiment(body.experiment_name)
    return dspy.executor.run(key, body.inputs, body.mode, dspy.executor.timeout(body.timeout),
                             _principal(), experiment_id)


@blueprint.operation("POST", PREFIX + "/execute/batch", body=schemas.BatchBody,
                     response=schemas.BatchOut, errors=(403, 404, 422, 501), api_only=True)
def execute_batch(body: schemas.BatchBody):
    """Run a program on each item, a bounded number at a time; failed items are counted."""
    from mlflow_hokusai.errors import ValidationFailed

    dspy = service()
    _audit()
    limit = dspy.settings.dspy_batch_max_items
    if len(body.inputs_list) > limit:
        raise ValidationFailed([{"loc": ["body", "inputs_list"], "type": "too_long",
                                 "msg": f"At most {limit} items (HOKUSAI_DSPY_BATCH_MAX_ITEMS)"}])
    key = dspy.resolve(body.program_id, READ)
    return dspy.executor.batch(key, body.inputs_list, body.mode,
                               dspy.executor.timeout(body.timeout), _principal(),
                               _experiment(body.experiment_name))


@blueprint.operation("GET", PREFIX + "/execution/<execution_id>",
                     path_model=schemas.ExecutionPath, response=schemas.ExecutionRecord,
                     errors=(404, 501), api_only=True)
def get_execution(execution_id: str):
    """An execution's record; only its caller and admins may read it."""
    record = service().store.get(execution_id)
    # Someone else's record answers as a missing one: ids are not confirmed.
    if record is None or not (_is_admin() or record.principal == _principal()):
        raise NotFound(f"Execution {execution_id} does not exist")
    return {"execution_id": record.id, "batch_id": record.batch_id,
            "program_name": record.model_name, "version": record.version,
            "mode": record.mode, "success": record.success, "inputs": record.inputs,
            "outputs": record.outputs, "error": record.error,
            "execution_time": record.execution_time, "principal": record.principal,
            "trace_id": record.trace_id, "created_at": record.created_at}


@blueprint.operation("GET", PREFIX + "/stats", response=schemas.StatsOut, errors=(501,),
                     api_only=True)
def stats():
    """Execution statistics of this registry, and whether caching and tracing are on."""
    dspy = service()
    return {"statistics": dspy.store.statistics(), "cache_enabled": True,
            "mlflow_tracking": dspy.executor.tracer is not None,
            "cached_programs": len(dspy.executor.cache.keys())}


@blueprint.operation("POST", PREFIX + "/cache/clear", body=schemas.ClearBody,
                     response=schemas.MessageOut, errors=(403, 501), api_only=True)
def clear_cache(body: schemas.ClearBody):
    """Stop this server worker's loaded program processes (admin scope: permissions rule)."""
    dropped = service().executor.cache.clear()
    return {"message": f"Cache cleared: {dropped} program(s) unloaded from this worker"}


@blueprint.operation("GET", PREFIX + "/health", response=schemas.HealthOut, errors=(501,),
                     api_only=True)
def health():
    """Public: whether programs can run, and the execution counts (a short cache)."""
    return service().health.get()
