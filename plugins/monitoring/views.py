"""The monitoring routes, under ``/api/v1/monitoring/<model_id>`` (and the
root path): drift (JSON, HTML, PNG), performance, feedback and the scheduled
check. The route table judges the registered model (READ, EDIT for the
check); feedback is judged again in the view (see ``feedback``)."""

from __future__ import annotations

import time

import flask

from mlflow_hokusai.errors import Conflict, NotFound, ValidationFailed
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT
from mlflow_hokusai.plugins.models import registry
from mlflow_hokusai.plugins.monitoring import drift, performance, plots, schemas
from mlflow_hokusai.rest import RestBlueprint

blueprint = RestBlueprint("hokusai_monitoring", __name__, tag="monitoring")
BASE = "/v1/monitoring/<model_id>"


def hokusai():
    return flask.current_app.extensions["hokusai"]


def _user() -> str | None:
    principal = current_principal()
    return principal.username if principal else None


def _model(model_id: str) -> None:
    registry.registry_store().get_registered_model(model_id)  # 404 when missing


def _now_ms() -> int:
    return int(time.time() * 1000)


@blueprint.operation("GET", BASE + "/drift", path_model=schemas.ModelPath,
                     query=schemas.DriftQuery, response=schemas.DriftReport,
                     errors=(400, 404, 413, 422))
def drift_report(model_id: str, query: schemas.DriftQuery):
    """Per-feature drift of the recorded inputs against the reference data."""
    _model(model_id)
    since_ms, until_ms = drift.window_ms(query.since, query.until, query.period_hours, _now_ms())
    result = drift.build(hokusai(), model_id, query.version, query.features, query.method,
                         query.threshold, since_ms, until_ms)
    if query.format == "html":
        return flask.Response(plots.render(result), mimetype="text/html")
    if query.format == "png":
        if query.feature not in result.report["features"]:
            raise ValidationFailed([{"loc": ["query", "feature"], "type": "value_error",
                                     "msg": "Not one of the report's features"}])
        assert query.feature is not None  # one of the features
        return flask.Response(plots.feature_png(result, query.feature), mimetype="image/png")
    return result.report


@blueprint.operation("GET", BASE + "/performance", path_model=schemas.ModelPath,
                     query=schemas.PerformanceQuery, response=schemas.PerformanceReport,
                     errors=(404, 422))
def performance_report(model_id: str, query: schemas.PerformanceQuery):
    """Requests, error rate, latency, throughput and accuracy over a window."""
    _model(model_id)
    since_ms, until_ms = drift.window_ms(query.since, query.until, query.period_hours, _now_ms())
    report = performance.report(hokusai().engine, model_id, query.version, since_ms, until_ms,
                                hokusai().settings.monitoring_max_rows)
    return {"model_id": model_id, "version": query.version,
            "window": {"since": since_ms, "until": until_ms}, **report}


@blueprint.operation("POST", BASE + "/feedback", path_model=schemas.ModelPath,
                     body=schemas.FeedbackBody, response=schemas.FeedbackOut,
                     errors=(403, 404, 409, 422))
def feedback(model_id: str, body: schemas.FeedbackBody):
    """The ground truth of a recorded prediction, by its request_id.

    Who may: the principal who made the prediction (READ on the model, which
    the route checks, as predicting needs), or anyone with EDIT on the model.
    """
    monitoring = hokusai().monitoring
    row = monitoring.outcomes.find(body.request_id)
    if row is None or row.model_name != model_id:
        raise NotFound(f"No prediction of {model_id!r} with request_id {body.request_id!r} "
                       "is recorded (recording lags predictions by about a second)")
    if row.error is not None:
        raise Conflict(f"Prediction {body.request_id} failed ({row.error}): nothing to judge")
    if row.recorded_by is None or row.recorded_by != _user():
        require("registered_model", model_id, EDIT)
    truth = body.true_value if isinstance(body.true_value, list) else [body.true_value]
    if len(truth) != row.records:
        raise ValidationFailed([{"loc": ["body", "true_value"], "type": "value_error",
                                 "msg": f"The prediction had {row.records} records: give as "
                                        "many true values"}])
    monitoring.outcomes.set_truth(row.id, truth, _user())
    return {"request_id": body.request_id, "model_id": model_id, "version": row.model_version,
            "records": row.records}


def _check_out(model_id: str) -> dict:
    checks = hokusai().monitoring.checks
    check = checks.get(model_id)
    if check is None:
        raise NotFound(f"No scheduled drift check for {model_id!r}")
    return {**check, "last_results": checks.results(model_id, limit=5)}


@blueprint.operation("PUT", BASE + "/schedule", path_model=schemas.ModelPath,
                     body=schemas.CheckBody, response=schemas.CheckOut, errors=(403, 404, 422))
def put_schedule(model_id: str, body: schemas.CheckBody):
    """Create or replace the model's scheduled drift check (runs at once, then
    every interval_minutes)."""
    _model(model_id)
    hokusai().monitoring.checks.put(model_id, body, _user())
    return _check_out(model_id)


@blueprint.operation("GET", BASE + "/schedule", path_model=schemas.ModelPath,
                     response=schemas.CheckOut, errors=(404,))
def get_schedule(model_id: str):
    """The model's scheduled drift check and its latest results."""
    return _check_out(model_id)


@blueprint.operation("DELETE", BASE + "/schedule", path_model=schemas.ModelPath,
                     response=schemas.CheckOut, errors=(404,))
def delete_schedule(model_id: str):
    """Stop the model's scheduled drift check."""
    out = _check_out(model_id)
    hokusai().monitoring.checks.delete(model_id)
    return out
