"""Monitoring end to end: a classifier registered with its training data as
the run's dataset input, deployed on a real server, predictions recorded, then
the drift report, feedback to accuracy, the scheduled check's Prometheus gauges
moving when drifted inputs arrive, and the HTML report in Chromium."""

from __future__ import annotations

import time
import uuid

import mlflow
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from tests.support.browser import chromium, screenshot
from tests.support.hokusai_servers import start_server
from tests.support.mlflow_client import mlflow_client
from tests.support.serving import Api, features_frame, log_model, log_training_data

WAIT = 120  # seconds a recorded prediction or a scheduled check may take here


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    db_file = tmp_path_factory.mktemp("monitoring-db") / "mlflow.db"
    server = start_server(tmp_path_factory, "monitoring", f"sqlite:///{db_file}", server="uvicorn",
                          extra_env={"HOKUSAI_PREDICTION_LOG_SAMPLE_RATE": "1",
                                     "HOKUSAI_SERVING_DIR":
                                         str(tmp_path_factory.mktemp("serving"))})
    key = server.create_key("read,write", owner=f"owner-{uuid.uuid4().hex[:6]}")
    name = f"monitor-{uuid.uuid4().hex[:8]}"
    x, labels = make_classification(n_samples=400, n_features=4, n_informative=3,
                                    n_redundant=0, random_state=0)
    frame = features_frame(x)
    classifier = LogisticRegression(max_iter=500).fit(frame, labels)
    with mlflow_client(server.url, key):
        mlflow.set_experiment(name)
        with mlflow.start_run() as run:
            log_training_data(server, run, frame, tmp_path_factory.mktemp("data"))
            log_model(classifier, frame, name)
    api = Api(server, key)
    api.deploy(model_name=name, version=1)
    yield {"server": server, "api": api, "key": key, "name": name, "frame": frame,
           "labels": labels, "classifier": classifier}
    server.server.stop()


def _until(check, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never happened: {what}")


def _gauge(server, metric: str, **labels) -> float | None:
    text = requests.get(server.url + "/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v
                                              for k, v in labels.items()):
                return sample.value
    return None


def _predict(setup, rows):
    answer = setup["api"]("POST", "/v1/predictions", json={
        "model_id": setup["name"], "version": 1, "features": rows.to_dict("records")})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_drift_feedback_and_scheduled_check(setup):
    api, name, server = setup["api"], setup["name"], setup["server"]
    base = f"/v1/monitoring/{name}"
    other = Api(server, server.create_key("read,write", owner=f"other-{uuid.uuid4().hex[:6]}"))
    schedule = {"version": "1", "interval_minutes": 0.05, "period_hours": 1, "threshold": 0.01,
                "log_to_mlflow": True}
    assert other("PUT", base + "/schedule", json=schedule).status_code == 403  # EDIT needed
    assert requests.get(server.url + "/api" + base + "/drift", timeout=30).status_code == 401
    bad = api("PUT", base + "/schedule", json={**schedule, "interval_minutes": 0})
    assert bad.status_code == 422 and "interval_minutes" in bad.text
    assert api("PUT", base + "/schedule", json=schedule).status_code == 200

    # In-distribution inputs: recorded, no drift; the report names its reference.
    rows = setup["frame"][:120]
    predicted = _predict(setup, rows)
    _until(lambda: _gauge(server, "hokusai_model_drifted", model=name) == 0,
           "a scheduled check without drift")
    report = api("GET", base + "/drift", params={"version": 1, "period_hours": 1}).json()
    assert report["overall_drift"] is False and report["features_checked"] == 4
    assert report["reference"]["source"] == "run_dataset"
    assert len(report["reference"]["digest"]) == 64 and report["reference"]["mlflow_digest"]
    assert other("GET", base + "/drift", params={"version": 1}).status_code == 200  # READ

    # Feedback for the recorded prediction: the accuracy is the model's on those rows.
    truth = setup["labels"][:120].tolist()
    assert other("POST", base + "/feedback", json={"request_id": predicted["request_id"],
                                                   "true_value": truth}).status_code == 403
    posted = _until(lambda: (lambda r: r if r.status_code != 404 else None)(
        api("POST", base + "/feedback", json={"request_id": predicted["request_id"],
                                             "true_value": truth})), "the prediction recorded")
    assert posted.status_code == 200, posted.text
    short = api("POST", base + "/feedback", json={"request_id": predicted["request_id"],
                                                  "true_value": truth[:3]})
    assert short.status_code == 422 and "true_value" in short.text
    performance = api("GET", base + "/performance", params={"period_hours": 1}).json()
    expected = (setup["classifier"].predict(rows) == setup["labels"][:120]).mean()
    assert performance["quality"]["accuracy"] == pytest.approx(expected)
    assert performance["requests"] >= 1 and performance["error_rate"] == 0
    assert performance["latency_ms"]["p50"] > 0

    # Drifted inputs arrive: the scheduled check's gauges move.
    shifted = setup["frame"][120:320].copy()
    shifted["f0"] += 3
    _predict(setup, shifted)
    _until(lambda: _gauge(server, "hokusai_feature_drifted", model=name, feature="f0") == 1,
           "the f0 drift gauge set")
    assert _gauge(server, "hokusai_model_drifted", model=name) == 1
    assert _gauge(server, "hokusai_feature_drift_statistic", model=name, feature="f0") > 0.2
    checks = api("GET", base + "/schedule").json()["last_results"]
    assert checks[0]["report"]["drifted_features"] == ["f0"]
    # The change is in the audit trail (records are durable before the check goes on).
    audit = _until(lambda: requests.get(
        server.url + "/api/audit", headers={"X-API-Key": server.admin_key}, timeout=30,
        params={"principal": "hokusai-monitoring", "model_name": name}).json()["records"],
        "the drift change audited")
    assert [r["action"] for r in audit] == ["DRIFT_STARTED f0"]
    assert audit[0]["model_version"] == "1"
    # Each check is also a run of the monitoring experiment, browsable in MLflow's UI.
    experiment = api("GET", "/2.0/mlflow/experiments/get-by-name",
                     params={"experiment_name": "hokusai-monitoring"}).json()["experiment"]
    runs = _until(lambda: api("POST", "/2.0/mlflow/runs/search", json={
        "experiment_ids": [experiment["experiment_id"]],
        "filter": "metrics.`f0.drifted` = 1 and attributes.status = 'FINISHED'",
        "max_results": 1}).json().get("runs"), "a finished run of a drifted check")
    assert runs and {"key": "hokusai.model", "value": name} in runs[0]["data"]["tags"]
    # The experiment is the server's: nobody owns it, and no key holder may take its name.
    assert api("GET", f"/owners/experiments/{experiment['experiment_id']}").status_code == 404
    taken = other("POST", "/2.0/mlflow/experiments/create", json={"name": "hokusai-monitoring"})
    assert taken.status_code == 403 and "reserved" in taken.text
    listed = api("GET", "/2.0/mlflow/artifacts/list", params={"run_id": runs[0]["info"]["run_id"]})
    page = requests.get(server.url + "/get-artifact", headers=api.headers, timeout=30, params={
        "run_uuid": runs[0]["info"]["run_id"], "path": "drift_report.html"})
    assert page.status_code == 200 and "Drift detected" in page.text, listed.text

    # The pictures: one PNG for a feature, the HTML page in Chromium.
    png = api("GET", base + "/drift", params={"version": 1, "format": "png", "feature": "f0"})
    assert png.headers["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    with chromium() as browser:
        context = browser.new_context(extra_http_headers={"X-API-Key": setup["key"]})
        page = context.new_page()
        page.goto(f"{server.url}/api{base}/drift?version=1&format=html&period_hours=1")
        assert page.locator("#verdict").inner_text().startswith("Drift detected")
        assert page.locator("tr.drifted td").first.inner_text() == "f0"
        assert page.locator("img").count() == 4
        screenshot(page, "monitoring-drift-report")
