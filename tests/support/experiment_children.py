"""An experiment's other children (a run with a metric, a trace with an
assessment, an evaluation dataset, a label schema, a review queue, an issue, a
scorer) as their owner makes them, and the reads that must follow the
experiment's permissions."""

from __future__ import annotations

import json

import mlflow

from tests.support.callers import API, Caller

API3 = "/api/3.0/mlflow"


def log_trace(url: str, key: str, experiment: str, monkeypatch) -> str:
    """A trace logged by the unmodified MLflow client (mlflow.start_span)."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key)
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    mlflow.set_tracking_uri(url)
    # An earlier test's mlflow.set_experiment outranks the variable: set it here too.
    mlflow.set_experiment(experiment_id=experiment)
    with mlflow.start_span("predict") as span:
        span.set_inputs({"x": 1})
        span.set_outputs({"y": 2})
    mlflow.flush_trace_async_logging()
    return span.trace_id


def children_world(server, owner: Caller, tag: str, monkeypatch) -> dict:
    """What the owner creates: an experiment with a run (a metric logged), a
    trace with an assessment, an evaluation dataset, a label schema, a review
    queue and an issue."""
    from mlflow.genai import datasets

    e = owner.ok("POST", f"{API}/experiments/create", json={"name": f"kids-{tag}"})[
        "experiment_id"]
    run = owner.ok("POST", f"{API}/runs/create", json={"experiment_id": e})["run"]["info"][
        "run_id"]
    owner.ok("POST", f"{API}/runs/log-metric", json={"run_id": run, "key": "m", "value": 1,
                                                       "timestamp": 1, "step": 0})
    trace = log_trace(server.url, owner.key, e, monkeypatch)
    assessment = mlflow.log_feedback(trace_id=trace, name="quality", value=True)
    dataset = datasets.create_dataset(name=f"ds-{tag}", experiment_id=[e])
    schema = owner.ok("POST", f"{API3}/label-schemas/create", json={
        "experiment_id": e, "name": f"schema-{tag}", "type": "FEEDBACK",
        "input": {"pass_fail": {"positive_label": "yes", "negative_label": "no"}}})
    queue = owner.ok("POST", f"{API3}/review-queues/create", json={
        "experiment_id": e, "name": f"queue-{tag}", "queue_type": "CUSTOM"})
    issue = owner.ok("POST", f"{API3}/issues", json={
        "experiment_id": e, "name": f"issue-{tag}", "description": "d"})
    scorer = owner.ok("POST", f"{API3}/scorers/register", json={
        "experiment_id": e, "name": "rules", "serialized_scorer": serialized_scorer()})
    spare = owner.ok("POST", f"{API}/experiments/create", json={"name": f"kids2-{tag}"})[
        "experiment_id"]
    return {"experiment": e, "spare": spare, "run": run, "trace": trace,
            "scorer": scorer["scorer_id"],
            "assessment": assessment.assessment_id, "dataset": dataset.dataset_id,
            "schema": first_id(schema, "schema_id"), "queue": first_id(queue, "queue_id"),
            "issue": first_id(issue, "issue_id"), "tag": tag}


def first_id(answer: dict, field: str) -> str:
    """The id in an answer, wherever MLflow nests it (``{"queue": {"queue_id"}}``)."""
    for value in answer.values():
        if isinstance(value, dict) and field in value:
            return value[field]
    return answer[field]


def serialized_scorer() -> str:
    from mlflow.genai.scorers import Guidelines

    return json.dumps(Guidelines(name="rules", guidelines="Be polite.").model_dump())


def reads(w: dict) -> list[tuple[str, str, dict]]:
    e, r, t, d = w["experiment"], w["run"], w["trace"], w["dataset"]
    return [
        ("GET", f"{API3}/traces/{t}", {}),
        ("GET", f"{API}/traces/{t}/info", {}),
        ("GET", f"{API3}/traces/get", {"params": {"trace_id": t}}),
        ("GET", f"{API3}/traces/batchGet", {"params": {"trace_ids": [t]}}),
        ("POST", f"{API3}/traces/batchGetInfos", {"json": {"trace_ids": [t]}}),
        ("GET", "/ajax-api/3.0/mlflow/get-trace-artifact", {"params": {"request_id": t}}),
        ("GET", f"{API3}/traces/{t}/assessments/{w['assessment']}", {}),
        ("POST", f"{API3}/traces/metrics",
         {"json": {"experiment_ids": [e], "view_type": "TRACES", "metric_name": "trace_count",
                   "aggregations": [{"aggregation_type": "COUNT"}]}}),
        ("GET", f"{API}/metrics/get-history-bulk-interval",
         {"params": {"run_ids": [r], "metric_key": "m"}}),
        ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
         {"params": {"run_id": [r], "metric_key": "m"}}),
        ("GET", f"{API3}/datasets/{d}", {}),
        ("GET", f"{API3}/datasets/{d}/records", {}),
        ("GET", f"{API3}/datasets/{d}/experiment-ids", {}),
        ("GET", f"{API3}/datasets/search", {"params": {"experiment_ids": [e]}}),
        ("GET", f"{API3}/label-schemas/get", {"params": {"schema_id": w["schema"]}}),
        ("GET", f"{API3}/review-queues/get", {"params": {"queue_id": w["queue"]}}),
        ("GET", f"{API3}/review-queues/get-by-name",
         {"params": {"experiment_id": e, "name": f"queue-{w['tag']}"}}),
        ("GET", f"{API3}/review-queues/items/list", {"params": {"queue_id": w["queue"]}}),
        ("GET", f"{API3}/scorers/versions", {"params": {"experiment_id": e, "name": "rules"}}),
        ("GET", f"{API3}/issues/{w['issue']}", {}),
        ("GET", f"{API3}/scorers/list", {"params": {"experiment_id": e}}),
        ("GET", f"{API3}/scorers/get", {"params": {"experiment_id": e, "name": "rules"}}),
        ("GET", f"{API3}/scorers/online-configs", {"params": {"scorer_ids": [w["scorer"]]}}),
    ]


def owners_answer(owner: Caller, method: str, path: str, kwargs: dict) -> int:
    """What the owner gets: 200, except where MLflow itself fails (under gunicorn
    there is no OTLP route, so span data is not in the tracking store and
    ``traces/get`` and ``traces/batchGet`` answer 500 to everyone)."""
    response = owner(method, path, **kwargs)
    assert response.status_code == 200 or (
        path.endswith(("/traces/get", "/traces/batchGet")) and
        "not stored in tracking store" in response.text), (method, path, response.text)
    return response.status_code
