"""Per-resource permissions on an experiment's other children (traces and their
tags and assessments, evaluation datasets, label schemas, review queues,
issues, scorers, metric-history bulk reads, promptlab runs), on the shared
servers of tests/plugins/auth/test_permissions.py (uvicorn + SQLite, gunicorn + PostgreSQL):
the owner succeeds, another principal is refused, an EDIT grant lets it write
but not delete."""

from __future__ import annotations

import http.client
import time
import urllib.parse
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.support.callers import API, Caller, grant, is_refused
from tests.support.experiment_children import (
    API3,
    children_world,
    log_trace,
    owners_answer,
    reads,
    serialized_scorer,
)

pytestmark = pytest.mark.usefixtures("no_telemetry")


def _edits(w: dict) -> list[tuple[str, str, dict]]:
    e, r, t, d = w["experiment"], w["run"], w["trace"], w["dataset"]
    return [
        ("PATCH", f"{API3}/traces/{t}/tags", {"json": {"key": "k", "value": "v"}}),
        ("DELETE", f"{API3}/traces/{t}/tags", {"json": {"key": "k"}}),
        ("PATCH", f"{API}/traces/{t}/tags", {"json": {"key": "k2", "value": "v"}}),
        ("POST", f"{API3}/traces/{t}/assessments",
         {"json": {"assessment": {"assessment_name": "a", "trace_id": t,
                                  "source": {"source_type": "HUMAN", "source_id": "x"},
                                  "feedback": {"value": 1}}}}),
        ("PATCH", f"{API3}/traces/{t}/assessments/{w['assessment']}",
         {"json": {"assessment": {"assessment_id": w["assessment"], "trace_id": t,
                                  "feedback": {"value": False}},
                   "update_mask": "feedback"}}),
        ("POST", f"{API}/traces/link-to-run", {"json": {"trace_ids": [t], "run_id": r}}),
        ("POST", f"{API3}/datasets/create",
         {"json": {"name": f"ds2-{uuid.uuid4().hex[:6]}", "experiment_ids": [e]}}),
        ("PATCH", f"{API3}/datasets/{d}/tags", {"json": {"tags": '{"k": "v"}'}}),
        ("POST", f"{API3}/datasets/{d}/records",
         {"json": {"records": '[{"inputs": {"q": "1"}, "expectations": {"a": "2"}}]'}}),
        # Attaching needs EDIT on the experiment attached as well.
        ("POST", f"{API3}/datasets/{d}/add-experiments",
         {"json": {"experiment_ids": [w["spare"]]}}),
        ("POST", f"{API3}/datasets/{d}/remove-experiments",
         {"json": {"experiment_ids": [w["spare"]]}}),
        ("POST", f"{API3}/review-queues/items/add",
         {"json": {"queue_id": w["queue"], "item_type": "TRACE", "item_ids": [t]}}),
        ("PATCH", f"{API3}/issues/{w['issue']}",
         {"json": {"issue_id": w["issue"], "description": "e"}}),
        ("POST", f"{API3}/traces", {"json": {"trace": {"trace_info": {
            "trace_id": f"tr-{uuid.uuid4().hex}", "request_time": "2026-01-01T00:00:00Z",
            "state": "OK", "trace_location": {"type": "MLFLOW_EXPERIMENT",
                                              "mlflow_experiment": {"experiment_id": e}}}}}}),
        ("POST", f"{API3}/scorers/register",
         {"json": {"experiment_id": e, "name": "rules", "serialized_scorer": serialized_scorer()}}),
        ("POST", "/ajax-api/2.0/mlflow/runs/create-promptlab-run",
         {"json": {"experiment_id": e, "prompt_template": "say {{ x }}",
                   "prompt_parameters": [{"key": "x", "value": "hi"}],
                   "model_route": "route", "model_input": "say hi", "model_output": "hi",
                   "mlflow_version": mlflow.__version__, "user_id": "u",
                   "start_time": int(time.time() * 1000)}}),
    ]


def _manages(w: dict) -> list[tuple[str, str, dict]]:
    e, t = w["experiment"], w["trace"]
    return [
        ("POST", f"{API3}/label-schemas/create", {"json": {
            "experiment_id": e, "name": f"s-{uuid.uuid4().hex[:6]}", "type": "FEEDBACK",
            "input": {"pass_fail": {"positive_label": "yes", "negative_label": "no"}}}}),
        ("DELETE", f"{API3}/scorers/delete", {"json": {"experiment_id": e, "name": "rules"}}),
        ("PATCH", f"{API3}/label-schemas/update",
         {"json": {"schema_id": w["schema"], "instruction": "new"}}),
        ("POST", f"{API3}/review-queues/delete", {"json": {"queue_id": w["queue"]}}),
        ("DELETE", f"{API3}/label-schemas/delete", {"json": {"schema_id": w["schema"]}}),
        ("DELETE", f"{API3}/datasets/{w['dataset']}", {}),
        ("POST", f"{API3}/traces/delete-traces", {"json": {"experiment_id": e,
                                                           "request_ids": [t]}}),
    ]


def _stock_postgres_failure(server, path: str, response) -> bool:
    """Stock MLflow 3.17.2's ``add_dataset_to_experiments`` compares the integer
    experiment id with a VARCHAR on PostgreSQL (psycopg 3), so it fails there for
    everyone, owners and admins alike; the permission check came first."""
    return path.endswith("/add-experiments") and server.name.startswith("gunicorn-postgres") \
        and response.status_code == 400 and "refused the request" in response.text


def _ok(response) -> bool:
    return response.status_code in (200, 201)


def test_children_follow_their_experiment(team, monkeypatch):
    server, owner, other, admin, tag = team
    w = children_world(server, owner, tag, monkeypatch)
    for method, path, kwargs in reads(w):  # the default permission is READ
        response = other(method, path, **kwargs)
        assert response.status_code == owners_answer(owner, method, path, kwargs), \
            (method, path, response.status_code, response.text)
    delete_assessment = ("DELETE", f"{API3}/traces/{w['trace']}/assessments/{w['assessment']}",
                         {})
    for method, path, kwargs in [*_edits(w), delete_assessment, *_manages(w)]:
        response = other(method, path, **kwargs)
        assert is_refused(response), (method, path, response.status_code, response.text)

    grant(owner, f"bob-{tag}", "experiment", w["experiment"], "EDIT")
    time.sleep(1.0)  # every worker reads grants again within a second
    attach = next(op for op in _edits(w) if op[1].endswith("/add-experiments"))
    assert is_refused(other(attach[0], attach[1], **attach[2]))  # not yet EDIT on the spare one
    grant(owner, f"bob-{tag}", "experiment", w["spare"], "EDIT")
    time.sleep(1.0)
    for method, path, kwargs in _edits(w):
        response = other(method, path, **kwargs)
        assert _ok(response) or _stock_postgres_failure(server, path, response), \
            (method, path, response.status_code, response.text)
    for method, path, kwargs in _manages(w):
        response = other(method, path, **kwargs)
        assert is_refused(response), (method, path, response.status_code, response.text)
    # Deleting an assessment is an edit in MLflow basic-auth's table.
    response = other(delete_assessment[0], delete_assessment[1])
    assert _ok(response), response.text

    for method, path, kwargs in _manages(w):
        response = owner(method, path, **kwargs)
        assert _ok(response), (method, path, response.status_code, response.text)


def test_lists_judge_every_id_they_name(team, monkeypatch):
    """Bulk reads and links name several resources: one of someone else's is enough
    to refuse a write, and each id must be readable."""
    server, owner, other, admin, tag = team
    w = children_world(server, owner, tag, monkeypatch)
    mine = other.ok("POST", f"{API}/experiments/create", json={"name": f"bobs-{tag}"})[
        "experiment_id"]
    my_run = other.ok("POST", f"{API}/runs/create", json={"experiment_id": mine})["run"][
        "info"]["run_id"]
    # Linking the owner's trace to one's own run: reading the trace is enough
    # (basic-auth), but linking one's own trace to the owner's run is a write there.
    my_trace = log_trace(server.url, other.key, mine, monkeypatch)
    assert _ok(other("POST", f"{API}/traces/link-to-run",
                     json={"trace_ids": [w["trace"]], "run_id": my_run}))
    assert is_refused(other("POST", f"{API}/traces/link-to-run",
                            json={"trace_ids": [my_trace], "run_id": w["run"]}))
    # A dataset attached to someone else's experiment as well is no longer one's own.
    response = other("POST", f"{API3}/datasets/create",
                     json={"name": f"ds-{uuid.uuid4().hex[:6]}", "experiment_ids": [mine,
                                                                                    w["experiment"]]})
    assert is_refused(response), response.text
    # Scoring traces writes assessments into their experiment.
    response = other("POST", "/ajax-api/3.0/mlflow/scorer/invoke", json={
        "experiment_id": w["experiment"], "serialized_scorer": "{}", "trace_ids": [w["trace"]]})
    assert is_refused(response), response.text
    # So does a prompt optimization (it creates a run there); its job is judged by
    # the experiment it records (no job can run on these servers: MLflow's job
    # runner is off).
    response = other("POST", f"{API3}/prompt-optimization/jobs", json={
        "experiment_id": w["experiment"], "source_prompt_uri": "prompts:/p/1"})
    assert is_refused(response), response.text
    # Two spellings of one list must agree; an empty list names nothing.
    response = other("GET", f"{API3}/traces/batchGet",
                     params={"trace_ids": [my_trace], "traceIds": [w["trace"]]})
    assert response.status_code == 400, response.text
    assert other("GET", f"{API}/metrics/get-history-bulk-interval",
                 params={"metric_key": "m"}).status_code == 400


def _otlp_span() -> bytes:
    """One root span as an OTLP exporter sends it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
    span.name = "export"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1000
    return request.SerializeToString()


def test_otlp_export_needs_edit_on_the_experiment(uvicorn_sqlite):
    """OTLP /v1/traces is FastAPI-native: served under uvicorn only."""
    server, tag = uvicorn_sqlite, uuid.uuid4().hex[:8]
    owner = Caller(server, server.create_key("read,write", owner=f"alice-{tag}"))
    other = Caller(server, server.create_key("read,write", owner=f"bob-{tag}"))
    experiment = owner.ok("POST", f"{API}/experiments/create", json={"name": f"otlp-{tag}"})[
        "experiment_id"]
    headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment}
    body = _otlp_span()
    assert is_refused(other("POST", "/v1/traces", headers=headers, data=body))
    response = owner("POST", "/v1/traces", headers=headers, data=body)
    assert response.status_code == 200, response.text
    # Linking the spans to someone else's run is a write on that run.
    mine = other.ok("POST", f"{API}/experiments/create", json={"name": f"otlp-bob-{tag}"})[
        "experiment_id"]
    run = owner.ok("POST", f"{API}/runs/create", json={"experiment_id": experiment})["run"][
        "info"]["run_id"]
    response = other("POST", "/v1/traces", data=_otlp_span(), headers={
        **headers, "x-mlflow-experiment-id": mine, "x-mlflow-run-id": run})
    assert is_refused(response), response.text
    # The header twice (the view reads the first): refused, whichever is whose.
    connection = http.client.HTTPConnection(urllib.parse.urlparse(server.url).netloc, timeout=30)
    connection.putrequest("POST", "/v1/traces")
    for name, value in (("X-API-Key", other.key), ("Content-Type", "application/x-protobuf"),
                        ("Content-Length", str(len(body))), ("x-mlflow-experiment-id", "0"),
                        ("x-mlflow-experiment-id", experiment)):
        connection.putheader(name, value)
    connection.endheaders(body)
    assert connection.getresponse().status == 400
    connection.close()
    assert other("POST", "/v1/traces", data=body,
                 headers={"Content-Type": "application/x-protobuf"}).status_code in (400, 422)


def test_the_mlflow_client_sees_permission_denied_on_traces_and_datasets(team, monkeypatch):
    from mlflow.genai import datasets

    server, owner, other, admin, tag = team
    w = children_world(server, owner, tag, monkeypatch)
    client = MlflowClient(server.url)
    client.set_trace_tag(w["trace"], "owner", "yes")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", other.key)
    assert client.get_trace(w["trace"]).info.tags["owner"] == "yes"
    for call in (lambda: client.set_trace_tag(w["trace"], "k", "v"),
                 lambda: client.delete_traces(w["experiment"], trace_ids=[w["trace"]]),
                 lambda: datasets.delete_dataset(dataset_id=w["dataset"]),
                 lambda: datasets.set_dataset_tags(dataset_id=w["dataset"], tags={"k": "v"})):
        with pytest.raises(MlflowException) as refused:
            call()
        assert refused.value.error_code == "PERMISSION_DENIED", refused.value.message
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    assert client.delete_traces(w["experiment"], trace_ids=[w["trace"]]) == 1
    datasets.delete_dataset(dataset_id=w["dataset"])
