"""The serving routes: MLConnector's ``/deployment`` resource and the ML
Service's ``/v1/predictions``. Served under ``/api`` and at the root path."""

from __future__ import annotations

import functools
import posixpath
import time
import urllib.parse

import flask

from mlflow_hokusai import signals
from mlflow_hokusai.errors import BadGateway, HokusaiError, NotFound
from mlflow_hokusai.pipeline import current_context, current_principal
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT, READ
from mlflow_hokusai.plugins.serving import resolve, schemas, signature
from mlflow_hokusai.plugins.serving.store import READY
from mlflow_hokusai.rest import RestBlueprint

blueprint = RestBlueprint("hokusai_serving", __name__, tag="serving")


def serving():
    return flask.current_app.extensions["hokusai"].serving


def _user() -> str | None:
    principal = current_principal()
    return principal.username if principal else None


def deployment_out(row) -> dict:
    ready = len(row.addresses) if row.status == READY else 0
    return {"deployment_id": row.id, "model_name": row.model_name, "version": row.version,
            "alias": row.alias, "resolved_version": row.resolved_version,
            "status": row.status, "reason": row.reason, "replicas": row.replicas,
            "ready_replicas": ready, "restarts": row.restarts,
            "reference_dataset": row.reference_dataset, "created_by": row.created_by,
            "created_at": row.created_at, "updated_at": row.updated_at}


def _deployment(deployment_id: str):
    row = serving().store.get(deployment_id)
    if row is None:
        raise NotFound(f"Deployment {deployment_id} does not exist")
    return row


def _reference_uri(uri: str | None) -> None:
    scheme = urllib.parse.urlparse(uri).scheme.lower() if uri else None
    if uri and scheme not in ("runs", "mlflow-artifacts", ""):
        from mlflow_hokusai.errors import ValidationFailed

        raise ValidationFailed([{"loc": ["body", "reference_dataset"], "type": "value_error",
                                 "msg": "Use a runs:/ or mlflow-artifacts:/ URI, or a path "
                                        "under HOKUSAI_EVALUATION_DATA_ROOT"}])


@blueprint.operation("POST", "/deployment", body=schemas.CreateDeployment,
                     response=schemas.DeploymentOut, status=201, errors=(403, 404, 422))
def create_deployment(body: schemas.CreateDeployment):
    """Deploy a registered version, or an alias (the deployment follows it)."""
    require("registered_model", body.model_name, EDIT)
    if body.replicas > flask.current_app.extensions["hokusai"].settings.serving_max_replicas:
        from mlflow_hokusai.errors import ValidationFailed

        raise ValidationFailed([{"loc": ["body", "replicas"], "type": "less_than_equal",
                                 "msg": "More replicas than HOKUSAI_SERVING_MAX_REPLICAS"}])
    _reference_uri(body.reference_dataset)
    resolve.version_of(body.model_name, body.version, body.alias)  # 404 when missing
    row = serving().store.create(body.model_name, body.version, body.alias, body.replicas,
                                 body.reference_dataset, _user())
    return deployment_out(row)


def _readable(row) -> bool:
    from mlflow_hokusai.errors import HokusaiError

    try:
        require("registered_model", row.model_name, READ)
        return True
    except HokusaiError:
        return False


@blueprint.operation("GET", "/deployment", response=schemas.DeploymentList)
def list_deployments():
    """Deployments of the models the caller may read."""
    return {"deployments": [deployment_out(r) for r in serving().store.list() if _readable(r)]}


@blueprint.operation("GET", "/deployment/<deployment_id>", path_model=schemas.DeploymentPath,
                     response=schemas.DeploymentOut, errors=(404,))
def get_deployment(deployment_id: str):
    """A deployment's status: starting, ready, or failed with the reason."""
    return deployment_out(_deployment(deployment_id))


@blueprint.operation("DELETE", "/deployment/<deployment_id>", path_model=schemas.DeploymentPath,
                     response=schemas.DeploymentOut, errors=(404,))
def delete_deployment(deployment_id: str):
    """Remove a deployment; its worker processes stop within a second."""
    row = _deployment(deployment_id)
    serving().store.delete(deployment_id)
    serving().lookup.forget()  # this worker stops calling it at once, others within the TTL
    return deployment_out(row)


def _call(row, records: list[dict], probabilities: bool, explain: bool,
          field: str = "features") -> tuple[dict, float]:
    started = time.perf_counter()
    served = functools.partial(signals.prediction_served.send, None, model_name=row.model_name,
                               version=row.resolved_version, records=len(records),
                               request_id=_request_id(), user=_user())
    try:
        signature.check(records, row.columns, ["body", field])
        result = serving().client.predict(row, records, probabilities, explain)
    except HokusaiError as exc:  # refused inputs and failed workers count as errors
        served(predictions=None, latency_ms=(time.perf_counter() - started) * 1000,
               error=exc.error_code)
        if isinstance(exc, BadGateway):
            serving().lookup.forget()  # the worker may have restarted at another address
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    serving().log.add(row.model_name, row.resolved_version, records, result["predictions"],
                      latency_ms, _user())
    served(predictions=result["predictions"], latency_ms=latency_ms, error=None)
    return result, latency_ms


def _request_id() -> str | None:
    context = current_context.get()
    return context.request_id if context else None


def _one_or_all(values, single: bool):
    if values is None:
        return None
    return values[0] if single else values


@blueprint.operation("POST", "/deployment/<deployment_id>/predict",
                     path_model=schemas.DeploymentPath,
                     body=schemas.DeploymentPredict, response=schemas.DeploymentPrediction,
                     errors=(404, 422, 502, 503, 504), direct=True)
def deployment_predict(deployment_id: str, body: schemas.DeploymentPredict):
    """Predict with a deployment (MLConnector's shape), with SHAP when asked."""
    row = serving().lookup.by_id(deployment_id)
    single = isinstance(body.data, dict)
    records = [body.data] if isinstance(body.data, dict) else body.data
    result, _ = _call(row, records, False, body.explain, "data")
    answer = {"prediction": _one_or_all(result["predictions"], single)}
    if body.explain:
        answer["explanation"] = _one_or_all(result["explanations"], single)
    return answer


def _probabilities(result: dict) -> list[dict] | None:
    if result.get("probabilities") is None:
        return None
    classes = [str(c) for c in result["classes"]]
    return [dict(zip(classes, row, strict=False)) for row in result["probabilities"]]


@blueprint.operation("POST", "/v1/predictions", body=schemas.PredictionBody,
                     response=schemas.Prediction, errors=(404, 422, 502, 503, 504),
                     direct=True)
def predictions(body: schemas.PredictionBody):
    """Predict with a registered model's deployment (the ML Service's shape)."""
    require("registered_model", body.model_id, READ)
    row = serving().lookup.for_model(body.model_id, body.version)
    single = isinstance(body.features, dict)
    records = [body.features] if isinstance(body.features, dict) else body.features
    options = body.options
    # Probabilities are always computed: the confidence is their maximum.
    result, latency_ms = _call(row, records, True, options.return_explanation)
    probabilities = _probabilities(result)
    confidence = [max(p.values()) if p else None for p in probabilities] \
        if probabilities else None
    answer = {"request_id": _request_id(),
              "model_id": row.model_name, "version": row.resolved_version,
              "prediction": _one_or_all(result["predictions"], single),
              "probabilities": _one_or_all(probabilities, single)
              if options.return_probabilities else None,
              "confidence": _one_or_all(confidence, single),
              "latency_ms": latency_ms}
    if options.return_explanation:
        answer["explanation"] = _one_or_all(result["explanations"], single)
    return answer


def _batch_location(uri: str, field: str, level: str) -> None:
    """Batch files are read and written through the artifact store only, with
    the caller's own permission on the run or experiment holding them."""
    from mlflow_hokusai.errors import ValidationFailed
    from mlflow_hokusai.plugins.serving.batch import WRITERS

    parsed = urllib.parse.urlparse(uri)
    scheme, extension = parsed.scheme.lower(), posixpath.splitext(parsed.path)[1].lower()
    problem = None
    if scheme not in ("runs", "mlflow-artifacts") or (parsed.netloc and scheme != "runs"):
        problem = "Use a runs:/ or mlflow-artifacts:/ URI"
    elif extension not in WRITERS:
        problem = "The file must end in .csv or .parquet"
    elif ".." in parsed.path.split("/"):
        problem = "The path must not contain '..'"
    if problem:
        raise ValidationFailed([{"loc": ["body", field], "msg": problem, "type": "value_error"}])
    if scheme == "runs":
        require("run", parsed.netloc or parsed.path.strip("/").split("/")[0], level)
    else:
        require("artifact", parsed.path.strip("/"), level)


def job_out(job) -> dict:
    progress = job.rows_done / job.rows_total if job.rows_total else None
    return {"job_id": job.id, "model_id": job.model_name, "version": job.version,
            "status": job.status, "input_path": job.input_path, "output_path": job.output_path,
            "batch_size": job.batch_size, "rows_total": job.rows_total,
            "rows_done": job.rows_done, "progress": progress, "attempts": job.attempts,
            "error": job.error, "created_at": job.created_at, "updated_at": job.updated_at}


@blueprint.operation("POST", "/v1/predictions/batch", body=schemas.BatchBody,
                     response=schemas.JobOut, status=202, errors=(403, 404, 422))
def create_batch(body: schemas.BatchBody):
    """Queue a batch prediction job over an artifact file."""
    require("registered_model", body.model_id, READ)
    _batch_location(body.input_path, "input_path", READ)
    _batch_location(body.output_path, "output_path", EDIT)
    resolve.deployment_for(serving().store, body.model_id, body.version)  # 404 when none
    return job_out(serving().jobs.create(body.model_id, body.version, body.input_path,
                                         body.output_path, body.batch_size, _user()))


@blueprint.operation("GET", "/v1/predictions/batch/<job_id>", path_model=schemas.JobPath,
                     response=schemas.JobOut, errors=(404,))
def get_batch(job_id: str):
    """A batch job's status and progress."""
    job = serving().jobs.get(job_id)
    if job is None:
        raise NotFound(f"Batch job {job_id} does not exist")
    require("registered_model", job.model_name, READ)
    return job_out(job)
