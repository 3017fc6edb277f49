"""POST /models/evaluate: a real small scikit-learn model on a real small dataset,
scored by the server and checked against scikit-learn run here; datasets only
from artifact URIs or under the data root."""

from __future__ import annotations

import math
import uuid

import mlflow
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression

from tests.support.hokusai_servers import SERVER_KINDS
from tests.support.mlflow_client import mlflow_client
from tests.support.models_api import Api


def _frame(features, target) -> pd.DataFrame:
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
    frame["label"] = target
    return frame


@pytest.fixture(scope="module", params=SERVER_KINDS)
def setup(request, tmp_path_factory):
    """A classifier (dataset logged as a run artifact) and a regressor (dataset
    as Parquet under the server's data root), both registered."""
    server = request.getfixturevalue(request.param)
    name = f"eval-{uuid.uuid4().hex[:8]}"
    features, labels = make_classification(n_samples=80, n_features=4, random_state=0)
    classes = _frame(features, labels)
    classifier = LogisticRegression().fit(classes.drop(columns="label")[:50], labels[:50])
    features, values = make_regression(n_samples=60, n_features=3, noise=10.0, random_state=1)
    numbers = _frame(features, values)
    regressor = LinearRegression().fit(numbers.drop(columns="label")[:40], values[:40])
    with mlflow_client(server.url, server.create_key("read,write")):
        mlflow.set_experiment(name)
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(classifier, name="model", pip_requirements=[])
            mlflow.register_model(info.model_uri, f"{name}-cls")
            csv = tmp_path_factory.mktemp("data") / "classes.csv"
            classes.to_csv(csv, index=False)
            mlflow.log_artifact(str(csv), artifact_path="data")
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(regressor, name="model", pip_requirements=[])
            mlflow.register_model(info.model_uri, f"{name}-reg")
    numbers.to_parquet(server.data_root / f"{name}.parquet", index=False)
    return {"server": server, "name": name, "run_id": run.info.run_id, "classes": classes,
            "classifier": classifier, "numbers": numbers, "regressor": regressor}


@pytest.fixture
def api(setup):
    return Api(setup["server"], scopes="admin")


def test_evaluation_needs_write_and_edit_on_the_model(setup):
    """The model's code runs in the sandbox, so any writer may evaluate, but
    only a model it may edit (the run goes into the model's experiment)."""
    refused = _evaluate(Api(setup["server"], scopes="read"), setup)
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "write"
    stranger = _evaluate(Api(setup["server"], scopes="read,write"), setup)
    assert stranger.status_code == 403, stranger.text
    assert "EDIT on registered_model" in stranger.json()["detail"]


def _evaluate(api, setup, **overrides):
    body = {"model_name": f"{setup['name']}-cls", "model_version": 1,
            "dataset_path": f"runs:/{setup['run_id']}/data/classes.csv", "target": "label",
            "metrics": ["accuracy", "precision", "recall", "f1_score"], **overrides}
    return api("POST", "/models/evaluate", json=body)


def test_classifier_on_a_run_artifact(setup, api):
    response = _evaluate(api, setup)
    assert response.status_code == 200, response.text
    body = response.json()
    frame = setup["classes"]
    truth, predicted = frame["label"], setup["classifier"].predict(frame.drop(columns="label"))
    assert body["metrics"] == pytest.approx({
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted),
        "recall": skm.recall_score(truth, predicted),
        "f1_score": skm.f1_score(truth, predicted)}, abs=1e-12)
    assert 0.5 < body["metrics"]["accuracy"] < 1.0  # a real, imperfect model
    assert (body["rows"], body["average"], body["model_version"]) == (80, "binary", 1)
    assert body["sandbox"] == "bwrap"  # the model's code ran outside the server

    # Logged to a new run, linked to the version.
    run = api("GET", "/2.0/mlflow/runs/get", params={"run_id": body["run_id"]}).json()["run"]
    logged = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert logged == pytest.approx(body["metrics"], abs=1e-12)
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["hokusai.evaluation.model_name"] == f"{setup['name']}-cls"
    assert run["info"]["status"] == "FINISHED"
    version = api("GET", f"/models/{setup['name']}-cls/1").json()
    assert version["tags"]["hokusai.evaluation_run_id"] == body["run_id"]


def test_regressor_on_parquet_under_the_data_root(setup, api):
    response = _evaluate(api, setup, model_name=f"{setup['name']}-reg",
                         dataset_path=f"{setup['name']}.parquet",
                         metrics=["rmse", "mae", "r2", "mse"])
    assert response.status_code == 200, response.text
    frame = setup["numbers"]
    truth, predicted = frame["label"], setup["regressor"].predict(frame.drop(columns="label"))
    assert response.json()["metrics"] == pytest.approx({
        "rmse": math.sqrt(skm.mean_squared_error(truth, predicted)),
        "mae": skm.mean_absolute_error(truth, predicted),
        "r2": skm.r2_score(truth, predicted),
        "mse": skm.mean_squared_error(truth, predicted)}, abs=1e-9)
    assert response.json()["average"] is None


def test_request_errors_are_clear(setup, api):
    response = _evaluate(api, setup, metrics=["accuracy", "vibes"])
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "metrics"] and "unknown metric(s) vibes" in issue["msg"]
    response = _evaluate(api, setup, target="nope")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Target column 'nope' is not in the dataset")
    assert _evaluate(api, setup, model_version=9).json()["detail"] == \
        f"Model not found: {setup['name']}-cls:9"
    missing = _evaluate(api, setup, dataset_path=f"runs:/{setup['run_id']}/data/none.csv")
    assert missing.status_code == 404
    assert _evaluate(api, setup, dataset_path="data.json").status_code == 400
    reader = Api(setup["server"], "read")
    assert _evaluate(reader, setup).status_code == 403


def test_dataset_size_limit(setup, api):
    big = setup["server"].data_root / f"{setup['name']}-big.csv"
    big.write_text("f0,label\n" + "0.123456789,1\n" * 90_000)  # > 1 MiB, the test limit
    response = _evaluate(api, setup, dataset_path=big.name)
    assert response.status_code == 413
    assert response.json()["detail"].endswith("the limit is 1048576 bytes")


def test_no_reading_outside_the_data_root(setup, api, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("f0,label\n1,1\n")
    link = setup["server"].data_root / f"{setup['name']}-link.csv"
    link.symlink_to(outside)
    for path in (str(outside), f"../{outside.name}", f"../../{tmp_path.name}/secret.csv",
                 link.name, f"file://{outside}"):
        response = _evaluate(api, setup, dataset_path=path)
        assert response.status_code == 400, (path, response.text)
    assert "outside the data root" in _evaluate(api, setup, dataset_path=link.name).text
