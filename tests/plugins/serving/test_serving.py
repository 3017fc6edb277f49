"""Model serving end to end: models registered with the unmodified MLflow
client on a real server, deployed, and called through the server; every
answer is checked against the model run here."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from mlflow.models import infer_signature
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression

from tests.support.hokusai_servers import start_server
from tests.support.mlflow_client import mlflow_client
from tests.support.serving import DEADLINE, Api, features_frame, log_model, log_training_data

MODELS = Path(__file__).parent / "serving_models"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    db_file = tmp_path_factory.mktemp("serving-db") / "mlflow.db"
    workdir = tmp_path_factory.mktemp("serving-dir")
    server = start_server(tmp_path_factory, "serving", f"sqlite:///{db_file}", server="uvicorn",
                          extra_env={"HOKUSAI_SERVING_TIMEOUT_SECONDS": "20",
                                     "HOKUSAI_SERVING_MAX_RESTARTS": "1",
                                     "HOKUSAI_PREDICTION_LOG_SAMPLE_RATE": "1",
                                     "HOKUSAI_SERVING_DIR": str(workdir),
                                     # Must never reach a model's process.
                                     "AWS_SECRET_ACCESS_KEY": "not-for-models"})
    owner = f"owner-{uuid.uuid4().hex[:6]}"
    key = server.create_key("read,write", owner=owner)
    name = f"serve-{uuid.uuid4().hex[:8]}"
    x, labels = make_classification(n_samples=100, n_features=4, n_informative=3,
                                    n_redundant=0, n_classes=3, random_state=0)
    classes = features_frame(x)
    classifier = LogisticRegression(max_iter=500).fit(classes, labels)
    x, values = make_regression(n_samples=80, n_features=3, noise=5.0, random_state=1)
    numbers = features_frame(x, "x")
    regressor = LinearRegression().fit(numbers, values)
    regressor2 = LinearRegression().fit(numbers, values * 2 + 1)
    with mlflow_client(server.url, key):
        mlflow.set_experiment(name)
        with mlflow.start_run() as run:
            log_training_data(server, run, classes, tmp_path_factory.mktemp("data"))
            log_model(classifier, classes, f"{name}-cls")
        with mlflow.start_run():
            log_model(regressor, numbers, f"{name}-reg")
        with mlflow.start_run():
            log_model(regressor2, numbers, f"{name}-reg")
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(f"{name}-reg", "champion", "1")
        probe_input = pd.DataFrame({"sleep": [0.0]})
        for kind in ("probe", "crash"):
            with mlflow.start_run():
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=str(MODELS / f"{kind}.py"), pip_requirements=[],
                    signature=infer_signature(probe_input, ["clean"]))
                mlflow.register_model(info.model_uri, f"{name}-{kind}")
    numbers.to_csv(server.data_root / "reference.csv", index=False)
    api = Api(server, key)
    deployments = {
        "cls": api.deploy(model_name=f"{name}-cls", version=1),
        "reg": api.deploy(model_name=f"{name}-reg", alias="champion",
                          reference_dataset="reference.csv"),
        "probe": api.deploy(model_name=f"{name}-probe", version=1, replicas=2),
    }
    yield {"server": server, "api": api, "name": name, "classes": classes, "numbers": numbers,
           "classifier": classifier, "regressor": regressor, "regressor2": regressor2,
           "deployments": deployments}
    server.server.stop()


def _predict(setup, model, features, version=None, **options):
    body = {"model_id": f"{setup['name']}-{model}", "features": features, "options": options}
    if version is not None:
        body["version"] = version
    return setup["api"]("POST", "/v1/predictions", json=body)


def test_classifier_predictions_match_the_model(setup):
    rows = setup["classes"][:5]
    answer = _predict(setup, "cls", rows.to_dict("records"), version=1)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_id"] == f"{setup['name']}-cls" and body["version"] == 1
    assert body["request_id"] == answer.headers["X-Request-ID"]
    assert body["latency_ms"] > 0
    # Served past MLflow's FastAPI app (mlflow_hokusai.direct), still inside its
    # security middlewares: their header is on the answer, and a foreign Host
    # (DNS rebinding) is refused before the model is asked.
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    rebound = requests.post(setup["api"].base_url + "/v1/predictions", timeout=60,
                            headers={**setup["api"].headers, "Host": "attacker.example"},
                            json={"model_id": f"{setup['name']}-cls",
                                  "features": rows.iloc[0].to_dict()})
    assert rebound.status_code == 403, rebound.text
    assert body["prediction"] == setup["classifier"].predict(rows).tolist()
    expected = setup["classifier"].predict_proba(rows)
    answered = zip(body["probabilities"], expected, body["confidence"], strict=True)
    for got, want, confidence in answered:
        assert [got[str(c)] for c in setup["classifier"].classes_] == pytest.approx(want)
        assert sum(got.values()) == pytest.approx(1.0)
        assert confidence == max(got.values())


def test_single_record_and_shap_explanation(setup):
    row = setup["classes"].iloc[7].to_dict()
    answer = _predict(setup, "cls", row, version=1, return_explanation=True)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    proba = setup["classifier"].predict_proba(pd.DataFrame([row]))[0]
    assert body["prediction"] == setup["classifier"].predict(pd.DataFrame([row]))[0]
    assert body["confidence"] == pytest.approx(proba.max())
    explanation = body["explanation"]
    assert explanation["method"] == "shap"
    assert set(explanation["feature_importance"]) == set(row)
    total = explanation["base_value"] + sum(explanation["feature_importance"].values())
    assert total == pytest.approx(proba.max(), abs=1e-6)
    # The background is the run's logged training data (100 rows, all kept): the base value is the
    # mean predicted probability of the explained class over it.
    k = int(np.argmax(proba))
    assert explanation["base_value"] == pytest.approx(
        setup["classifier"].predict_proba(setup["classes"])[:, k].mean(), abs=1e-6)


def test_regressor_through_its_alias_with_mlconnector_shape(setup):
    api, deployment = setup["api"], setup["deployments"]["reg"]
    rows = setup["numbers"][:4]
    answer = api("POST", f"/deployment/{deployment['deployment_id']}/predict",
                 json={"data": rows.to_dict("records"), "explain": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["prediction"] == pytest.approx(setup["regressor"].predict(rows).tolist())
    for explanation, output in zip(body["explanation"], body["prediction"], strict=True):
        total = explanation["base_value"] + sum(explanation["feature_importance"].values())
        assert total == pytest.approx(output, abs=1e-6)
    # Through the ML Service route, by alias: a regressor has no probabilities.
    by_alias = _predict(setup, "reg", rows.iloc[0].to_dict(), version="@champion").json()
    assert by_alias["prediction"] == pytest.approx(setup["regressor"].predict(rows[:1])[0])
    assert by_alias["probabilities"] is None and by_alias["confidence"] is None


@pytest.mark.parametrize("features, loc, words", [
    ({"f0": 1.0, "f1": 2.0, "f2": 3.0}, "f3", "Missing feature 'f3'"),
    ({"f0": 1.0, "f1": 2.0, "f2": 3.0, "f3": "high"}, "f3", "must be a number"),
    ({"f0": 1.0, "f1": 2.0, "f2": 3.0, "f3": True}, "f3", "must be a number"),
    ({"f0": 1.0, "f1": 2.0, "f2": 3.0, "f3": 4.0, "f9": 1}, "f9", "Unknown feature 'f9'"),
])
def test_bad_inputs_are_422_naming_the_feature(setup, features, loc, words):
    answer = _predict(setup, "cls", features, version=1)
    assert answer.status_code == 422, answer.text
    issues = answer.json()["detail"]
    assert any(issue["loc"][-1] == loc and words in issue["msg"] for issue in issues), issues


def test_unknown_models_versions_and_fields(setup):
    assert _predict(setup, "nothing", {"f0": 1.0}).status_code == 404
    assert _predict(setup, "cls", {"f0": 1.0}, version=9).status_code == 404
    assert _predict(setup, "cls", {"f0": 1.0}, version="@nope").status_code == 404
    assert _predict(setup, "cls", [], version=1).status_code == 422
    api = setup["api"]
    assert api("POST", "/deployment", json={"model_name": f"{setup['name']}-cls"}
               ).status_code == 422  # neither version nor alias
    assert api("GET", "/deployment/" + "0" * 32).status_code == 404


def test_model_process_gets_no_secrets(setup):
    answer = _predict(setup, "probe", {"sleep": 0.0}, version=1)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction"] == "clean"


def test_permissions(setup):
    server, name = setup["server"], setup["name"]
    other = Api(server, server.create_key("read,write", owner=f"other-{uuid.uuid4().hex[:6]}"))
    # Predicting needs READ (everyone's default here); deploying needs EDIT.
    assert other("POST", "/v1/predictions", json={
        "model_id": f"{name}-cls", "version": 1,
        "features": setup["classes"].iloc[0].to_dict()}).status_code == 200
    refused = other("POST", "/deployment", json={"model_name": f"{name}-cls", "version": 1})
    assert refused.status_code == 403
    deployment_id = setup["deployments"]["cls"]["deployment_id"]
    assert other("DELETE", f"/deployment/{deployment_id}").status_code == 403
    reader = Api(server, server.create_key("read"))
    assert reader("POST", f"/deployment/{deployment_id}/predict",
                  json={"data": setup["classes"].iloc[0].to_dict()}).status_code == 200
    anonymous = requests.post(server.url + "/api/v1/predictions", json={}, timeout=30)
    assert anonymous.status_code == 401


def test_predictions_are_recorded_and_sampled(setup):
    name, api = f"{setup['name']}-cls", setup["api"]
    before = api("GET", f"/models/{name}/1/predictions").json()["total_predictions"]
    rows = setup["classes"][10:13].to_dict("records")
    assert _predict(setup, "cls", rows, version=1).status_code == 200
    deadline = time.monotonic() + 30
    while api("GET", f"/models/{name}/1/predictions").json()["total_predictions"] < before + 3:
        assert time.monotonic() < deadline, "predictions were never recorded"
        time.sleep(0.5)
    engine = sa.create_engine(setup["server"].database_uri)
    with engine.connect() as connection:
        sampled = [json.loads(row[0]) for row in connection.execute(sa.text(
            "SELECT inputs FROM hokusai_prediction_samples WHERE model_name = :n"), {"n": name})]
    engine.dispose()
    assert all(row in sampled for row in rows)  # sample rate 1 in this server


def test_alias_move_redeploys(setup):
    api, name = setup["api"], f"{setup['name']}-reg"
    deployment_id = setup["deployments"]["reg"]["deployment_id"]
    moved = api("POST", f"/models/{name}/2/transition", json={"stage": "Staging"})
    assert moved.status_code == 200, moved.text
    headers = setup["api"].headers
    alias = requests.post(setup["server"].url + "/api/2.0/mlflow/registered-models/alias",
                          headers=headers, timeout=30,
                          json={"name": name, "alias": "champion", "version": "2"})
    assert alias.status_code == 200, alias.text
    status = api.wait(deployment_id, lambda s: s["resolved_version"] == 2 and
                      s["status"] == "ready")
    assert status["alias"] == "champion"
    rows = setup["numbers"][:2]
    body = _predict(setup, "reg", rows.to_dict("records"), version="@champion").json()
    assert body["version"] == 2
    assert body["prediction"] == pytest.approx(setup["regressor2"].predict(rows).tolist())


def test_timeout_answers_504_and_others_keep_serving(setup):
    answer = _predict(setup, "probe", {"sleep": 300.0}, version=1)
    assert answer.status_code == 504, answer.text
    assert _predict(setup, "cls", setup["classes"].iloc[0].to_dict(), version=1
                    ).status_code == 200


def test_crashing_model_reports_failed(setup):
    api, name = setup["api"], f"{setup['name']}-crash"
    deployment = api.deploy(model_name=name, version=1)
    for crashes in range(2):  # max restarts is 1 on this server: the second crash is final
        api.wait(deployment["deployment_id"],
                 lambda s, crashes=crashes: s["status"] == "ready" and s["restarts"] == crashes)
        answer = _predict(setup, "crash", {"sleep": 0.0}, version=1)
        assert answer.status_code in (502, 503), answer.text
    failed = api.wait(deployment["deployment_id"], lambda s: s["status"] == "failed")
    assert "code 3" in failed["reason"]
    assert _predict(setup, "cls", setup["classes"].iloc[0].to_dict(), version=1
                    ).status_code == 200
    assert requests.get(setup["server"].url + "/health", timeout=30).status_code == 200


def test_list_and_delete(setup):
    api = setup["api"]
    listed = {d["deployment_id"] for d in api("GET", "/deployment").json()["deployments"]}
    assert {d["deployment_id"] for d in setup["deployments"].values()} <= listed
    probe = api.wait(setup["deployments"]["probe"]["deployment_id"],
                     lambda s: s["ready_replicas"] == 2)
    assert probe["replicas"] == 2 and probe["status"] == "ready"
    assert api("DELETE", f"/deployment/{probe['deployment_id']}").status_code == 200
    assert api("GET", f"/deployment/{probe['deployment_id']}").status_code == 404
    assert _predict(setup, "probe", {"sleep": 0.0}, version=1).status_code == 404


def _job(api, job_id):
    return api("GET", f"/v1/predictions/batch/{job_id}").json()


def _wait_job(api, job_id, until):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        job = _job(api, job_id)
        if until(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"batch job never reached the state: {job}")


def test_batch_job_survives_a_server_restart(setup, tmp_path):
    api, server, name = setup["api"], setup["server"], setup["name"]
    x, _ = make_classification(n_samples=10_000, n_features=4, n_informative=3,
                               n_redundant=0, n_classes=3, random_state=5)
    rows = features_frame(x)
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    with mlflow_client(server.url, api.headers["X-API-Key"]):
        mlflow.set_experiment(name)
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(tmp_path / "rows.parquet"), artifact_path="batch")
    body = {"model_id": f"{name}-cls", "version": 1, "batch_size": 20,
            "input_path": f"runs:/{run.info.run_id}/batch/rows.parquet",
            "output_path": f"runs:/{run.info.run_id}/batch/out/predicted.parquet"}
    bad = api("POST", "/v1/predictions/batch", json={**body, "output_path": "/tmp/x.parquet"})
    assert bad.status_code == 422, bad.text
    created = api("POST", "/v1/predictions/batch", json=body)
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    _wait_job(api, job_id, lambda j: j["status"] == "running" and j["rows_done"] > 0)
    server.server.kill(signal.SIGKILL)  # the whole server, mid-job
    server.server.start()
    done = _wait_job(api, job_id, lambda j: j["status"] in ("succeeded", "failed"))
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2 and done["rows_done"] == done["rows_total"] == 10_000
    with mlflow_client(server.url, api.headers["X-API-Key"]):
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="batch/out/predicted.parquet",
            dst_path=str(tmp_path / "out"))
    output = pd.read_parquet(local)
    assert len(output) == 10_000
    assert output["prediction"].tolist() == setup["classifier"].predict(rows).tolist()
