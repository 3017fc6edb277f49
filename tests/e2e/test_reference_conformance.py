"""Conformance with the Hokusai API references (issue 20): every endpoint they
document, called exactly as they show it (paths, bodies, credential styles),
answers with the documented status and fields. Where MLflow and the references
disagree, both are served: the MLflow verbs keep working beside the
reference's.

Against a real server (the request pipeline, the route table, the prefixes
and MLflow's own routers are what is checked); the error rendering of an
unexpected failure is checked in-process at the end."""

from __future__ import annotations

import re
import uuid

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from tests.support.audit import wait_for
from tests.support.mlflow_client import mlflow_client

ERROR_FIELDS = {"detail", "error", "error_code", "message"}
PREFIXES = ("", "/api/mlflow", "/mlflow")  # MLflow's routes, as the references mount them


class Caller:
    def __init__(self, server, key, style="bearer"):
        self.server, self.key, self.style = server, key, style

    def __call__(self, method, path, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        params = dict(kwargs.pop("params", {}) or {})
        if self.style == "bearer":
            headers["Authorization"] = f"Bearer {self.key}"
        elif self.style == "apikey":
            headers["Authorization"] = f"ApiKey {self.key}"
        elif self.style == "header":
            headers["X-API-Key"] = self.key
        elif self.style == "query":
            params["api_key"] = self.key
        return requests.request(method, self.server.url + path, headers=headers, params=params,
                                timeout=120, allow_redirects=False, **kwargs)


def error_body(response, status, code):
    """The one error body: the reference's two forms and MLflow's fields."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:200]
    body = response.json()
    assert set(body) >= ERROR_FIELDS, body
    assert body["error"]["code"] == code and body["error"]["message"] == body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.fixture(scope="module")
def ref(uvicorn_sqlite, tmp_path_factory):
    """A model with two versions from runs with metrics, a signature and a
    dataset, made with the unmodified MLflow client, and an admin caller."""
    server = uvicorn_sqlite
    owner = f"ref-{uuid.uuid4().hex[:6]}"
    key = server.create_key("admin", owner=owner)
    name = f"customer-classifier-{uuid.uuid4().hex[:6]}"
    frame = pd.DataFrame({"tenure": [1, 5, 9, 2, 8, 3, 7, 4], "spend": [9, 2, 1, 8, 1, 7, 2, 6],
                          "churned": [1, 0, 0, 1, 0, 1, 0, 1]})
    features = frame.drop(columns="churned")
    model = LogisticRegression().fit(features, frame["churned"])
    with mlflow_client(server.url, key):
        mlflow.set_experiment(name)
        runs = []
        for accuracy in (0.85, 0.87):
            with mlflow.start_run() as run:
                mlflow.log_metrics({"accuracy": accuracy, "train_loss": 0.05, "val_loss": 0.07})
                mlflow.log_input(mlflow.data.from_pandas(frame, name="customer_data_v2"),
                                 context="train")
                info = mlflow.sklearn.log_model(model, name="model", pip_requirements=[],
                                                signature=infer_signature(features))
                mlflow.register_model(info.model_uri, name)
                csv = tmp_path_factory.mktemp("ref") / "customers.csv"
                frame.to_csv(csv, index=False)
                mlflow.log_artifact(str(csv), artifact_path="data")
            runs.append(run.info)
    return {"server": server, "key": key, "call": Caller(server, key), "name": name,
            "runs": runs, "experiment_id": runs[0].experiment_id,
            # Registrations count against a per-key limit of 20/minute: tests that
            # register much get a fresh key of the same owner.
            "fresh": lambda: Caller(server, server.create_key("admin", owner=owner))}


# -- base URL /api, health checks, documentation: public -------------------------------

@pytest.mark.parametrize("base", ["", "/api"])
def test_health_family_is_public_under_both_bases(ref, base):
    anonymous = Caller(ref["server"], None, style="none")
    health = anonymous("GET", base + "/health")
    assert health.status_code == 200, health.text
    body = health.json()
    assert {"status", "version", "services", "timestamp"} <= set(body)
    assert {"mlflow", "database", "redis"} <= set(body["services"])
    ready = anonymous("GET", base + "/ready").json()
    assert ready["ready"] is True and ready["can_serve_traffic"] is True
    assert {"name", "passed", "error", "critical"} <= set(ready["checks"][0])
    assert ready["degraded_mode"] is False
    live = anonymous("GET", base + "/live").json()
    assert live["alive"] is True and {"uptime", "memory_usage_mb"} <= set(live)
    version = anonymous("GET", base + "/version").json()
    assert {"version", "build_date", "git_commit", "api_version"} <= set(version)
    metrics = anonymous("GET", base + "/metrics")
    assert metrics.status_code == 200 and "hokusai_http_requests_total" in metrics.text


@pytest.mark.parametrize("path", ["/mlflow/health/mlflow", "/api/health/mlflow"])
def test_mlflow_health_shapes(ref, path):
    body = Caller(ref["server"], None, "none")("GET", path).json()
    assert body["status"] == "healthy" and body["mlflow_server"] == ref["server"].url
    for check in ("connectivity", "experiments_api", "artifacts_api"):
        assert body["checks"][check]["status"] == "healthy"
        assert body["checks"][check]["message"]
        assert body["checks"][check]["response_time_ms"] > 0  # the extra fields stay


@pytest.mark.parametrize("path", ["/mlflow/health/mlflow/detailed",
                                  "/api/health/mlflow/detailed"])
def test_mlflow_health_detailed_shape(ref, path):
    body = Caller(ref["server"], None, "none")("GET", path).json()
    assert body["mlflow_server"] == ref["server"].url and body["timestamp"]
    assert body["overall_health"] is True
    assert body["environment"]["MLFLOW_SERVER_URL"] == ref["server"].url
    assert not any("secret" in k.lower() or "password" in k.lower() for k in body["environment"])
    experiments = next(t for t in body["tests"] if t["endpoint"] == "experiments_api")
    assert experiments == {**experiments, "status_code": 200, "success": True,
                           "url": ref["server"].url + "/api/2.0/mlflow/experiments/search"}
    assert experiments["response_time_ms"] > 0


def test_connectivity_and_breaker_shapes(ref):
    anonymous = Caller(ref["server"], None, "none")
    body = anonymous("GET", "/api/health/mlflow/connectivity").json()
    assert body["status"] == "connected" and body["response_code"] == 200
    assert body["mlflow_server"] == ref["server"].url and body["response_time_ms"] > 0
    enhanced = anonymous("GET", "/health/mlflow").json()
    assert enhanced["connected"] is True and enhanced["circuit_breaker_state"] == "CLOSED"
    status = ref["call"]("GET", "/health/status").json()
    assert status["api_version"] and status["service_name"] == "mlflow-hokusai"
    assert status["overall_health"] == "healthy"
    assert status["mlflow"]["status"] == {"connected": True, "circuit_breaker_state": "CLOSED"}
    assert status["mlflow"]["circuit_breaker"]["state"] == "CLOSED"
    assert {"failure_count", "last_failure_time"} <= set(status["mlflow"]["circuit_breaker"])
    assert set(status["system_info"]) == {"cpu_percent", "memory_percent"}
    assert {"services", "uptime_seconds", "environment", "timestamp"} <= set(status)
    reset = ref["call"]("POST", "/health/mlflow/reset").json()
    assert {"message", "timestamp", "reset_by"} <= set(reset)


def test_documentation_is_public_and_local(ref):
    anonymous = Caller(ref["server"], None, "none")
    document = anonymous("GET", "/api/openapi.json")
    assert document.status_code == 200 and "/api/models/register" in document.json()["paths"]
    page = anonymous("GET", "/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "http" not in page.text  # every file comes from this server: no CDN
    for src in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css",
                "/docs/static/hokusai-docs.js"):
        assert src in page.text
        served = anonymous("GET", src)
        assert served.status_code == 200 and len(served.content) > 100, src
    assert "SwaggerUIBundle" in anonymous("GET", "/docs/static/swagger-ui-bundle.js").text
    assert anonymous("GET", "/docs/static/other.js").status_code == 401  # only those files


# -- authentication and error bodies ---------------------------------------------------

@pytest.mark.parametrize("style", ["bearer", "apikey", "header", "query"])
def test_every_credential_style(ref, style):
    answer = Caller(ref["server"], ref["key"], style)("GET", "/models/")
    assert answer.status_code == 200, answer.text


def test_error_bodies_carry_every_form(ref):
    anonymous = Caller(ref["server"], None, "none")
    assert error_body(anonymous("GET", "/models/"), 401, "UNAUTHORIZED")["detail"] == \
        "API key required"
    wrong = Caller(ref["server"], "hk_live_" + "x" * 36)("GET", "/models/")
    assert error_body(wrong, 401, "UNAUTHORIZED")["detail"] == "Invalid or expired API key"
    missing = ref["call"]("GET", f"/models/{ref['name']}/99")
    assert error_body(missing, 404, "RESOURCE_NOT_FOUND")["detail"] == \
        f"Model not found: {ref['name']}:99"
    invalid = ref["call"]("POST", "/models/register", json={"model_type": "classification"})
    body = error_body(invalid, 422, "INVALID_PARAMETER")
    assert body["detail"][0]["loc"] == ["body", "model_data"]
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"  # what MLflow clients read
    # MLflow's own errors get the same fields beside MLflow's.
    mlflow_missing = ref["call"]("GET", "/api/2.0/mlflow/registered-models/get",
                                 params={"name": "no-such-model-x"})
    assert error_body(mlflow_missing, 404, "RESOURCE_NOT_FOUND")["error_code"] == \
        "RESOURCE_DOES_NOT_EXIST"


def test_unknown_paths_and_methods_answer_json(ref):
    unknown = ref["call"]("GET", "/api/no/such/route")
    assert error_body(unknown, 404, "RESOURCE_NOT_FOUND")["detail"]
    assert "<html" not in unknown.text.lower()
    wrong_method = ref["call"]("PUT", "/api/2.0/mlflow/experiments/search", json={})
    error_body(wrong_method, 405, "INVALID_PARAMETER")


def test_fastapi_native_routes_answer_the_one_error_body(ref):
    # MLflow's FastAPI routes (jobs here) answer a bare {"detail": ...} of their own.
    missing = ref["call"]("GET", "/ajax-api/3.0/jobs/nope")
    assert error_body(missing, 404, "RESOURCE_NOT_FOUND")["request_id"]
    invalid = error_body(ref["call"]("POST", "/ajax-api/3.0/jobs/", json={}), 422,
                         "INVALID_PARAMETER")
    assert isinstance(invalid["detail"], list) and invalid["message"].startswith("Invalid request")


def test_rate_limit_error(ref):
    key = ref["server"].create_key("read", rate_limit="2/minute")
    caller = Caller(ref["server"], key)
    answers = [caller("GET", "/models/") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[0].headers["X-RateLimit-Limit"] == "2"
    assert all(h in answers[0].headers for h in ("X-RateLimit-Remaining", "X-RateLimit-Reset"))
    body = error_body(answers[2], 429, "RATE_LIMIT_EXCEEDED")
    assert body["detail"] == "Rate limit exceeded" and int(answers[2].headers["Retry-After"]) > 0


# -- model management ------------------------------------------------------------------

def test_list_models_with_and_without_slash(ref):
    with_slash = ref["call"]("GET", "/models/", params={"name": ref["name"]})
    without = ref["call"]("GET", "/models", params={"name": ref["name"]})
    assert with_slash.status_code == without.status_code == 200  # no 308 redirect
    assert with_slash.json() == without.json()
    [model] = with_slash.json()["models"]
    assert model["name"] == ref["name"] and model["version"] == "2"  # a string, as documented
    assert {"status", "created_at", "tags"} <= set(model)
    assert ref["call"]("GET", "/api/models", params={"name": ref["name"]}).json() == \
        with_slash.json()


def test_version_read_update_transition(ref):
    call, name = ref["call"], ref["name"]
    got = call("GET", f"/models/{name}/1")
    assert got.status_code == 200 and {"name", "version", "status", "description", "tags"} <= \
        set(got.json())
    patched = call("PATCH", f"/models/{name}/1", json={
        "description": "Updated description",
        "tags": {"environment": "production", "updated_by": "user123"}})
    assert patched.status_code == 200 and patched.json()["description"] == "Updated description"
    moved = call("POST", f"/models/{name}/2/transition",
                 json={"stage": "Production", "archive_existing": True})
    assert moved.status_code == 200 and moved.json()["stage"] == "Production"
    production = call("GET", "/models/production").json()["models"]
    mine = [m for m in production if m["name"] == name]
    assert mine and {"version", "stage", "deployed_at"} <= set(mine[0])


def test_register_as_the_reference_shows(ref):
    run_id = ref["runs"][0].run_id
    answer = ref["call"]("POST", "/models/register", json={
        "model_data": f"runs:/{run_id}/model", "model_type": "classification",
        "metadata": {"accuracy": 0.85, "dataset": "customer_data_v2"}})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["model_name"] == f"classification-{run_id}"  # derived, as the README says
    assert {"model_id", "version", "registration_timestamp"} <= set(body)
    refused = ref["call"]("POST", "/models/register", json={
        "model_data": "mlflow-artifacts:/somewhere/model", "model_type": "classification"})
    detail = error_body(refused, 422, "INVALID_PARAMETER")["detail"]
    assert detail[0]["loc"] == ["body", "model_name"] and "model_name" in detail[0]["msg"]


def test_compare_recommends_in_words(ref):
    name = ref["name"]
    body = ref["call"]("GET", "/models/compare",
                       params={"model1": f"{name}:1", "model2": f"{name}:2"}).json()
    assert body["model1"]["version"] == 1 and body["model2"]["name"] == name
    assert body["delta"]["accuracy"] == pytest.approx(0.02)
    assert body["recommendation"].startswith("Use version 2")
    assert body["recommendation_detail"]["model"] == f"{name}:2"


def test_evaluate_without_target(ref):
    run_id = ref["runs"][0].run_id
    answer = ref["call"]("POST", "/models/evaluate", json={
        "model_name": ref["name"], "model_version": "1",
        "dataset_path": f"runs:/{run_id}/data/customers.csv",
        "metrics": ["accuracy", "precision", "recall", "f1_score"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["target"] == "churned"  # the one column the signature does not take
    assert set(body["metrics"]) == {"accuracy", "precision", "recall", "f1_score"}


def test_metrics_lineage_download_predictions(ref):
    call, name = ref["call"], ref["name"]
    metrics = call("GET", f"/models/{name}/2/metrics").json()
    assert {"training_metrics", "validation_metrics", "production_metrics"} <= set(metrics)
    assert metrics["training_metrics"] == {"train_loss": 0.05}
    lineage = call("GET", f"/models/{name}/2/lineage").json()
    assert lineage["model"] == f"{name}:2" and lineage["parents"] == [f"{name}:1"]
    assert lineage["training_data"] == ["customer_data_v2"]
    assert lineage["experiments"] == [ref["experiment_id"]]
    assert lineage["parent_versions"][0]["version"] == 1  # the details stay
    download = call("GET", f"/models/{name}/1/download")
    assert download.status_code == 200 and download.content[:2] == b"PK"
    recorded = call("POST", f"/models/{name}/1/predictions",
                    json={"predictions": [{"latency_ms": 25}]})
    assert recorded.status_code in (200, 201), recorded.text
    stats = call("GET", f"/models/{name}/1/predictions").json()
    assert stats["total_predictions"] == 1
    assert {"date_range", "daily_counts"} <= set(stats)
    assert {"date", "count"} == set(stats["daily_counts"][0])


def test_batch_model_lineage_and_impact(ref):
    call, name = ref["call"], ref["name"]
    batch = call("POST", "/models/batch", json={"operations": [
        {"action": "transition_stage", "model": f"{name}:1", "stage": "Staging"}]})
    assert batch.status_code == 200, batch.text
    history = call("GET", f"/models/{name}/lineage").json()
    assert {"model_id", "lineage", "total_versions", "latest_version"} <= set(history)
    assert {"version", "metrics", "created_at"} <= set(history["lineage"][0])
    impact = call("GET", "/models/contributors/0x1234567890123456789012345678901234567890"
                  "/impact").json()
    assert {"address", "total_models_improved", "total_improvement_score", "contributions",
            "first_contribution", "last_contribution"} <= set(impact)


def test_delete_version_message(ref):
    call, name = ref["fresh"](), ref["name"]
    run_id = ref["runs"][1].run_id
    extra = call("POST", "/models/register", json={
        "model_data": f"runs:/{run_id}/model", "model_name": name})
    version = extra.json()["version"]
    answer = call("DELETE", f"/models/{name}/{version}")
    assert answer.json() == {"message": f"Model {name}:{version} deleted successfully"}


# -- MLflow behind the references' verbs and prefixes ---------------------------------

@pytest.mark.parametrize("prefix", PREFIXES)
def test_mlflow_routes_under_every_prefix(ref, prefix):
    call, base = ref["fresh"](), prefix + "/api/2.0/mlflow"
    assert call("GET", base + "/experiments/search", params={"max_results": 5}).status_code == 200
    experiment = call("POST", base + "/experiments/create",
                      json={"name": f"ref-exp-{uuid.uuid4().hex[:6]}"}).json()["experiment_id"]
    assert call("GET", base + "/experiments/get",
                params={"experiment_id": experiment}).status_code == 200
    run = call("POST", base + "/runs/create", json={"experiment_id": experiment}).json()
    run_id = run["run"]["info"]["run_id"]
    assert call("POST", base + "/runs/log-metric", json={
        "run_id": run_id, "key": "accuracy", "value": 0.9, "timestamp": 1}).status_code == 200
    assert call("POST", base + "/runs/log-parameter",
                json={"run_id": run_id, "key": "lr", "value": "0.1"}).status_code == 200
    assert call("POST", base + "/runs/update",
                json={"run_id": run_id, "status": "FINISHED"}).status_code == 200
    model = f"ref-proxy-{uuid.uuid4().hex[:6]}"
    assert call("POST", base + "/registered-models/create", json={"name": model}).ok
    assert call("GET", base + "/registered-models/search").status_code == 200
    assert call("POST", base + "/model-versions/create", json={
        "name": model, "source": f"runs:/{run_id}/model", "run_id": run_id}).ok
    path = f"{prefix}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/x.txt"
    assert call("PUT", path, data=b"hello").status_code == 200
    assert call("GET", path).content == b"hello"


@pytest.mark.parametrize("base", [prefix + "/api/2.0/mlflow" for prefix in PREFIXES] +
                         ["/ajax-api/2.0/mlflow"])  # the UI's spelling
def test_reference_verbs_beside_mlflows(ref, base):
    call = ref["fresh"]()
    found = call("GET", base + "/runs/search", params=[
        ("experiment_ids", ref["experiment_id"]),
        ("filter", "metrics.accuracy > 0.86 and metrics.val_loss > 0"),
        ("max_results", "10"), ("order_by", "metrics.accuracy DESC")])
    assert found.status_code == 200, found.text
    assert [r["info"]["run_id"] for r in found.json()["runs"]] == [ref["runs"][1].run_id]
    model = f"ref-verbs-{uuid.uuid4().hex[:6]}"
    call("POST", base + "/registered-models/create", json={"name": model})
    run_id = ref["runs"][0].run_id
    call("POST", base + "/model-versions/create",
         json={"name": model, "source": f"runs:/{run_id}/model", "run_id": run_id})
    updated = call("POST", base + "/registered-models/update",
                   json={"name": model, "description": "by POST"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["registered_model"]["description"] == "by POST"
    version = call("POST", base + "/model-versions/update",
                   json={"name": model, "version": "1", "description": "v by POST"})
    assert version.json()["model_version"]["description"] == "v by POST"
    assert call("POST", base + "/registered-models/delete", json={"name": model}).ok
    gone = call("GET", base + "/registered-models/get", params={"name": model})
    assert gone.status_code == 404
    # MLflow's own verbs still answer.
    assert call("POST", base + "/runs/search",
                json={"experiment_ids": [ref["experiment_id"]]}).status_code == 200


def test_reference_verbs_are_judged_and_audited_as_mlflows(ref):
    server, admin = ref["server"], ref["fresh"]()
    model = f"ref-judged-{uuid.uuid4().hex[:6]}"
    assert admin("POST", "/api/2.0/mlflow/registered-models/create", json={"name": model}).ok
    reader = Caller(server, server.create_key("read"))
    refused = reader("POST", "/api/mlflow/api/2.0/mlflow/registered-models/delete",
                     json={"name": model})
    assert error_body(refused, 403, "PERMISSION_DENIED")["required_scope"] == "write"
    stranger = Caller(server, server.create_key("read,write", owner="someone-else"))
    denied = stranger("POST", "/api/2.0/mlflow/registered-models/update",
                      json={"name": model, "description": "not mine"})
    assert error_body(denied, 403, "PERMISSION_DENIED")["required_permission"] == "EDIT"
    assert reader("GET", "/api/2.0/mlflow/runs/search",
                  params={"experiment_ids": ref["experiment_id"]}).status_code == 200
    assert admin("POST", "/mlflow/api/2.0/mlflow/registered-models/update",
                 json={"name": model, "description": "audited"}).ok
    records = wait_for(server, count=2, model_name=model, action="registered-models/update")
    assert {r["status"] for r in records} >= {200, 403}
    assert all(r["action"] == "POST /api/2.0/mlflow/registered-models/update" for r in records)


# -- tokens ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["uvicorn_sqlite", "gunicorn_postgres"])
def test_token_bound_by_plain_set_tag_reports_its_baseline(request, kind):
    server = request.getfixturevalue(kind)
    key = server.create_key("read,write", owner=f"tok-{uuid.uuid4().hex[:6]}")
    call = Caller(server, key)
    name, token = f"ref-token-{uuid.uuid4().hex[:6]}", f"REF-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_TOKEN", key)
        client = MlflowClient(server.url)
        run = client.create_run(client.create_experiment(name))
        source = f"runs:/{run.info.run_id}/model"
        client.create_registered_model(name)
        client.create_model_version(name, source, run_id=run.info.run_id)
        client.set_model_version_tag(name, "1", "hokusai_token_id", token)
    before = call("GET", f"/models/by-token/{token}").json()
    assert before["model_name"] == name and before["metric_name"] is None
    registered = call("POST", "/api/models/register-tokenized", json={
        "model_uri": f"models:/{name}/1", "model_name": name, "token_id": token,
        "metric_name": "accuracy", "baseline_value": 0.85})
    assert registered.status_code == 201, registered.text
    after = call("GET", f"/models/by-token/{token}").json()
    assert (after["metric_name"], after["baseline_value"]) == ("accuracy", 0.85)
    assert [v["version"] for v in after["versions"]] == [1, 2]


# -- the references' DSPy executor (issue 19; its behaviour: tests/plugins/dspy/test_dspy.py) --

def test_dspy_routes_answer_in_the_references_shapes(ref):
    call = ref["call"]
    assert set(call("GET", "/api/v1/dspy/programs").json()) >= {"programs"}
    health = call("GET", "/api/v1/dspy/health").json()
    assert set(health) == {"status", "total_executions", "success_rate"}
    stats = call("GET", "/api/v1/dspy/stats").json()
    assert set(stats) >= {"statistics", "cache_enabled", "mlflow_tracking"}
    assert set(stats["statistics"]) == {"total_executions", "success_rate",
                                        "average_execution_time"}
    # A request without program_id is the reference's 422, naming the field.
    body = error_body(call("POST", "/api/v1/dspy/execute", json={}), 422, "INVALID_PARAMETER")
    assert ["body", "program_id"] in [issue["loc"] for issue in body["detail"]]


# -- in-process: an unexpected failure --------------------------------------------------

def test_unexpected_failure_names_only_the_request(caplog):
    import flask

    from mlflow_hokusai.rest.blueprint import unexpected_error

    app = flask.Flask(__name__)
    app.register_error_handler(Exception, unexpected_error)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret at /srv/db password=hunter2")

    answer = app.test_client().get("/boom", headers={"X-Request-ID": "req-42"})
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["detail"] == "Internal server error" and body["request_id"] == "req-42"
    assert body["error"] == {"code": "INTERNAL_ERROR", "message": "Internal server error"}
    assert "hunter2" not in answer.get_data(as_text=True)
    assert "hunter2" in caplog.text  # the log keeps what happened


def test_a_failing_native_route_answers_the_same_500():
    """Under uvicorn, FastAPI-native routes (artifact upload, OTLP...) fail in
    Starlette, which answers plain text: the adapter answers the one error body."""
    import json

    import anyio
    from starlette.applications import Starlette
    from starlette.routing import Route

    from mlflow_hokusai.asgi import AsgiAdapter
    from mlflow_hokusai.bodies import BodyLimit
    from mlflow_hokusai.pipeline import Pipeline, tag_request

    def boom(request):
        raise RuntimeError("secret at /srv/db password=hunter2")

    pipeline = Pipeline()
    pipeline.add(tag_request, order=0)
    app = AsgiAdapter(Starlette(routes=[Route("/boom", boom)]), pipeline, BodyLimit(16))
    scope = {"type": "http", "method": "GET", "path": "/boom", "root_path": "",
             "query_string": b"", "headers": [(b"x-request-id", b"req-7")],
             "client": ("127.0.0.1", 1), "server": ("test", 80), "scheme": "http",
             "http_version": "1.1"}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def run():
        try:
            await app(scope, receive, send)
        except RuntimeError:
            pass  # Starlette re-raises for the server's log, after answering

    anyio.run(run)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = dict(start["headers"])
    assert start["status"] == 500 and headers[b"content-type"] == b"application/json"
    answer = json.loads(body)
    assert answer["detail"] == "Internal server error"
    # The server's own id, never the client's (test_audit.py): it names the log lines
    assert answer["request_id"] == headers[b"x-request-id"].decode() != "req-7"
    assert re.fullmatch(r"[0-9a-f]{32}", answer["request_id"])
    assert b"hunter2" not in body
