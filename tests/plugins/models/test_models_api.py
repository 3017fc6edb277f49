"""The model management API on real servers and real registry data: each route's
answers and errors, scopes, pagination, batch, compare, download, predictions."""

from __future__ import annotations

import io
import os
import uuid
import zipfile

import mlflow
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tests.support.hokusai_servers import SERVER_KINDS
from tests.support.mlflow_client import mlflow_client
from tests.support.models_api import Api

RUN_METRICS = [
    {"train_loss": 0.5, "val_accuracy": 0.8, "accuracy": 0.8, "loss": 0.5},
    {"train_loss": 0.3, "val_accuracy": 0.9, "accuracy": 0.9, "loss": 0.3, "epochs": 7.0},
]


@pytest.fixture(scope="module", params=SERVER_KINDS)
def registry(request, tmp_path_factory):
    """One registered model with two versions, each from a run with metrics and
    a small scikit-learn model, made with the unmodified MLflow client."""
    server = request.getfixturevalue(request.param)
    # The model's owner: the tests' writes are its owner's (per-resource
    # permissions, which refuse anyone else's, are test_permissions.py's).
    owner = f"models-{uuid.uuid4().hex[:8]}"
    key = server.create_key("read,write", owner=owner)
    name = f"api-{uuid.uuid4().hex[:8]}"
    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    runs = []
    with mlflow_client(server.url, key):
        mlflow.set_experiment(name)
        for metrics in RUN_METRICS:
            with mlflow.start_run() as run:
                mlflow.log_metrics(metrics)
                model = LogisticRegression().fit(features, [0, 0, 1, 1])
                info = mlflow.sklearn.log_model(model, name="model", pip_requirements=[])
                mlflow.register_model(info.model_uri, name)
                runs.append(run.info.run_id)
        local = mlflow.artifacts.download_artifacts(
            f"models:/{name}/1", dst_path=str(tmp_path_factory.mktemp("model")))
    # The client adds registered_model_meta to what it downloads; the store has none.
    files = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local)
                   for f in fs if f != "registered_model_meta")
    return {"server": server, "name": name, "runs": runs, "files": files, "owner": owner}


@pytest.fixture
def api(registry):
    return Api(registry["server"], owner=registry["owner"])


def test_get_version(registry, api):
    name = registry["name"]
    for prefix in ("/api", ""):
        api.prefix = prefix
        body = api("GET", f"/models/{name}/1").json()
        assert {k: body[k] for k in ("name", "version", "status", "stage", "aliases",
                                     "description", "run_id")} == {
            "name": name, "version": 1, "status": "READY", "stage": "None", "aliases": [],
            "description": None, "run_id": registry["runs"][0]}
        assert body["source"].startswith("models:/m-")
        assert body["logged_model_id"] == body["source"][len("models:/"):]
    response = api("GET", f"/models/{name}/99")
    assert (response.status_code, response.json()["detail"]) == \
        (404, f"Model not found: {name}:99")
    assert response.json()["error"] == {"code": "RESOURCE_NOT_FOUND",
                                        "message": f"Model not found: {name}:99"}
    assert api("GET", "/models/no-such-model/1").json()["detail"] == \
        "Model not found: no-such-model:1"
    response = api("GET", f"/models/{name}/zero")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "version"]


def test_list_latest_versions_with_pagination(registry, api):
    name = registry["name"]
    listed = api("GET", "/models/", params={"name": name}).json()
    assert [(m["name"], m["version"], m["status"]) for m in listed["models"]] == \
        [(name, "2", "READY")]  # a string, as the API reference shows it
    assert listed["next_page_token"] is None
    group = f"page-{uuid.uuid4().hex[:8]}"
    for suffix in ("a", "b", "c"):
        assert api("POST", "/2.0/mlflow/registered-models/create",
                   json={"name": f"{group}-{suffix}"}).status_code == 200
    first = api("GET", "/models/", params={"name": group, "max_results": 2}).json()
    assert [m["name"] for m in first["models"]] == [f"{group}-a", f"{group}-b"]
    assert first["models"][0]["version"] is None and first["next_page_token"]
    second = api("GET", "/models/", params={"name": group, "max_results": 2,
                                            "page_token": first["next_page_token"]}).json()
    assert [m["name"] for m in second["models"]] == [f"{group}-c"]
    assert second["next_page_token"] is None
    assert api("GET", "/models/", params={"max_results": 0}).status_code == 422


def test_update_description_and_tags(registry, api):
    name = registry["name"]
    body = api("PATCH", f"/models/{name}/1",
               json={"description": "first", "tags": {"team": "fraud", "tmp": "x"}}).json()
    assert body["description"] == "first" and body["tags"] == {"team": "fraud", "tmp": "x"}
    body = api("PATCH", f"/models/{name}/1", json={"tags": {"tmp": None}}).json()
    assert body["description"] == "first" and body["tags"] == {"team": "fraud"}
    response = api("PATCH", f"/models/{name}/1", json={"descripton": "typo"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"
    assert api("PATCH", f"/models/{name}/42", json={}).status_code == 404
    reader = Api(registry["server"], "read", owner=registry["owner"])
    assert reader("PATCH", f"/models/{name}/1", json={}).status_code == 403
    assert reader("GET", f"/models/{name}/1").status_code == 200


def test_transition_moves_the_stage_alias(registry, api):
    name = registry["name"]
    body = api("POST", f"/models/{name}/2/transition", json={"stage": "production"}).json()
    assert (body["stage"], body["aliases"]) == ("Production", ["production"])
    production = api("GET", "/models/production").json()["models"]
    assert [(m["version"], m["stage"]) for m in production if m["name"] == name] == \
        [(2, "Production")]
    body = api("POST", f"/models/{name}/2/transition", json={"stage": "STAGING"}).json()
    assert (body["stage"], body["aliases"]) == ("Staging", ["staging"])
    assert [m for m in api("GET", "/models/production").json()["models"]
            if m["name"] == name] == []
    body = api("POST", f"/models/{name}/2/transition", json={"stage": "None"}).json()
    assert (body["stage"], body["aliases"]) == ("None", [])
    response = api("POST", f"/models/{name}/2/transition", json={"stage": "Live"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "stage"]
    reader = Api(registry["server"], "read", owner=registry["owner"])
    assert reader("POST", f"/models/{name}/2/transition",
                  json={"stage": "Archived"}).status_code == 403


def test_production_lists_alias_holders_too(registry, api):
    name = registry["name"]
    client_alias = api("POST", "/2.0/mlflow/registered-models/alias",
                       json={"name": name, "alias": "production", "version": "1"})
    assert client_alias.status_code == 200, client_alias.text
    production = [m for m in api("GET", "/models/production").json()["models"]
                  if m["name"] == name]
    assert [(m["version"], m["stage"], m["aliases"]) for m in production] == \
        [(1, "None", ["production"])]
    assert production[0]["deployed_at"]
    api("DELETE", "/2.0/mlflow/registered-models/alias",
        json={"name": name, "alias": "production"})


def test_register_from_uris_and_refusals(registry, api):
    name = f"{registry['name']}-reg"
    run_id = registry["runs"][1]
    response = api("POST", "/models/register", json={
        "model_data": f"runs:/{run_id}/model", "model_name": name, "model_type": "sklearn",
        "metadata": {"owner": "ml-team", "layers": 3}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["model_id"], body["model_name"], body["version"]) == (f"{name}:1", name, 1)
    assert body["logged_model_id"].startswith("m-") and body["registration_timestamp"]
    version = api("GET", f"/models/{name}/1").json()
    assert version["tags"] == {"owner": "ml-team", "layers": "3", "model_type": "sklearn"}
    assert version["run_id"] == run_id
    again = api("POST", "/models/register", json={
        "model_data": f"models:/{registry['name']}/1", "model_name": name})
    assert again.status_code == 201 and again.json()["version"] == 2
    assert api("GET", f"/models/{name}/2").json()["source"] == f"models:/{registry['name']}/1"
    for uri in ("/etc/passwd", "file:///etc/passwd", "C:\\models\\x", "s3://elsewhere/model",
                f"runs:/{run_id}/../../etc", "runs://host/x/model", "http://example.com/m",
                "mlflow-artifacts:/1/%2e%2e/secrets"):
        refused = api("POST", "/models/register", json={"model_data": uri, "model_name": name})
        assert refused.status_code == 400, (uri, refused.text)
        assert "refused" in refused.json()["detail"]
    missing = api("POST", "/models/register", json={"model_data": f"runs:/{run_id}/nothing",
                                                    "model_name": name})
    assert missing.status_code == 404
    assert api("GET", f"/models/{name}/3").status_code == 404  # nothing was created
    reader = Api(registry["server"], "read", owner=registry["owner"])
    assert reader("POST", "/models/register", json={"model_data": f"runs:/{run_id}/model",
                                                    "model_name": name}).status_code == 403


def test_delete_version(registry, api):
    name = f"{registry['name']}-del"
    assert api("POST", "/models/register", json={
        "model_data": f"models:/{registry['name']}/1", "model_name": name}).status_code == 201
    reader = Api(registry["server"], "read", owner=registry["owner"])
    assert reader("DELETE", f"/models/{name}/1").status_code == 403
    response = api("DELETE", f"/models/{name}/1")
    assert response.json() == {"message": f"Model {name}:1 deleted successfully"}
    assert api("GET", f"/models/{name}/1").status_code == 404
    gone = api("DELETE", f"/models/{name}/1").json()
    assert (gone["detail"], gone["error"]["code"]) == (f"Model not found: {name}:1",
                                                       "RESOURCE_NOT_FOUND")


def test_batch(registry, api):
    name = f"{registry['name']}-batch"
    for _ in range(2):
        api("POST", "/models/register", json={"model_data": f"models:/{registry['name']}/1",
                                              "model_name": name})
    response = api("POST", "/models/batch", json={"operations": [
        {"action": "set_tag", "model": f"{name}:1", "key": "k", "value": "v"},
        {"action": "transition_stage", "model": f"{name}:1", "stage": "staging"},
        {"action": "update_description", "model": f"{name}:2", "description": "two"},
        {"action": "delete", "model": f"{name}:2"},
        {"action": "set_tag", "model": f"{name}:2", "key": "k", "value": "late"},
        {"action": "delete_tag", "model": f"{name}:1", "key": "k"},
    ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["index"], r["status"], r["status_code"]) for r in body["results"]] == \
        [(0, "ok", 200), (1, "ok", 200), (2, "ok", 200), (3, "ok", 200), (4, "error", 404),
         (5, "ok", 200)]
    assert body["results"][4]["detail"] == f"Model not found: {name}:2"
    assert (body["succeeded"], body["failed"]) == (5, 1)
    version = api("GET", f"/models/{name}/1").json()
    assert (version["stage"], version["aliases"], version["tags"]) == ("Staging", ["staging"], {})

    # Validated before anything runs: a missing version refuses the whole batch.
    refused = api("POST", "/models/batch", json={"operations": [
        {"action": "set_tag", "model": f"{name}:1", "key": "never", "value": "v"},
        {"action": "delete", "model": f"{name}:9"}]})
    assert refused.status_code == 422
    assert refused.json()["detail"] == [{"loc": ["body", "operations", 1, "model"],
                                         "msg": f"Model not found: {name}:9",
                                         "type": "not_found"}]
    assert refused.json()["error"]["code"] == "INVALID_PARAMETER"
    assert api("GET", f"/models/{name}/1").json()["tags"] == {}
    malformed = api("POST", "/models/batch", json={"operations": [
        {"action": "explode", "model": f"{name}:1"}, {"action": "set_tag", "model": "no-version"}]})
    assert malformed.status_code == 422
    assert {tuple(i["loc"][:3]) for i in malformed.json()["detail"]} == \
        {("body", "operations", 0), ("body", "operations", 1)}
    too_many = api("POST", "/models/batch", json={"operations": [
        {"action": "delete_tag", "model": f"{name}:1", "key": "k"}] * 101})
    assert (too_many.status_code, too_many.json()["detail"]) == \
        (413, "101 operations; the limit is 100")


def test_compare(registry, api):
    name = registry["name"]
    body = api("GET", "/models/compare", params={"model1": f"{name}:1",
                                                 "model2": f"{name}:2"}).json()
    assert body["model1"] == {"name": name, "version": 1, "run_id": registry["runs"][0],
                              "metrics": RUN_METRICS[0]}
    assert body["model2"]["metrics"] == RUN_METRICS[1]
    assert body["delta"] == pytest.approx({"train_loss": -0.2, "val_accuracy": 0.1,
                                           "accuracy": 0.1, "loss": -0.2})
    assert body["recommendation_detail"] == {
        "model": f"{name}:2", "rule": "majority_of_known_metrics", "metric": None,
        "direction": None, "reason": "better on 4 of 4 shared metrics"}
    # The API reference's string beside it.
    assert body["recommendation"] == "Use version 2 (better on 4 of 4 shared metrics)"
    # A benchmark metric decides alone; its direction may be stated.
    api("PATCH", f"/models/{name}/1", json={"tags": {"benchmark_metric": "loss",
                                                     "benchmark_direction": "higher"}})
    try:
        recommendation = api("GET", "/models/compare", params={
            "model1": f"{name}:1", "model2": f"{name}:2"}).json()["recommendation_detail"]
    finally:
        api("PATCH", f"/models/{name}/1", json={"tags": {"benchmark_metric": None,
                                                         "benchmark_direction": None}})
    assert recommendation == {"model": f"{name}:1", "rule": "benchmark_metric",
                              "metric": "loss", "direction": "higher",
                              "reason": "higher loss is better"}
    missing = api("GET", "/models/compare", params={"model1": f"{name}:1", "model2": "x:5"})
    assert (missing.status_code, missing.json()["detail"]) == (404, "Model not found: x:5")
    assert api("GET", "/models/compare", params={"model1": name}).status_code == 422


def test_predictions_and_version_metrics(registry, api):
    name = registry["name"]
    records = [{"timestamp": "2026-03-01T10:00:00Z", "latency_ms": 10},
               {"timestamp": "2026-03-01T23:59:59Z", "latency_ms": 20},
               {"timestamp": "2026-03-02T00:00:00Z", "latency_ms": 30},
               {"timestamp": "2026-03-02T12:00:00+02:00", "latency_ms": 40},
               {"timestamp": "2026-03-04T08:00:00Z", "latency_ms": 50},
               {"timestamp": "2026-03-04T09:00:00Z"}]
    response = api("POST", f"/models/{name}/1/predictions", json={"predictions": records})
    assert (response.status_code, response.json()) == (201, {"recorded": 6})
    stats = api("GET", f"/models/{name}/1/predictions").json()
    assert stats == {
        "total_predictions": 6,
        "date_range": {"start": "2026-03-01", "end": "2026-03-04"},
        "daily_counts": [{"date": "2026-03-01", "count": 2}, {"date": "2026-03-02", "count": 2},
                         {"date": "2026-03-04", "count": 2}],
        "latency_ms": {"count": 5, "mean": 30.0, "p50": 30.0, "p90": 50.0, "p95": 50.0,
                       "p99": 50.0}}
    window = api("GET", f"/models/{name}/1/predictions",
                 params={"start": "2026-03-02", "end": "2026-03-02"}).json()
    assert window["total_predictions"] == 2 and window["latency_ms"]["p50"] == 30.0
    empty = api("GET", f"/models/{name}/2/predictions").json()
    assert empty["total_predictions"] == 0 and empty["date_range"] == {"start": None,
                                                                       "end": None}
    assert api("POST", f"/models/{name}/1/predictions",
               json={"predictions": [{"latency_ms": -1}]}).status_code == 422
    assert api("POST", f"/models/{name}/9/predictions",
               json={"predictions": [{}]}).status_code == 404

    metrics = api("GET", f"/models/{name}/1/metrics").json()
    assert metrics["training_metrics"] == {"train_loss": 0.5}
    assert metrics["validation_metrics"] == {"val_accuracy": 0.8}
    assert metrics["other_metrics"] == {"accuracy": 0.8, "loss": 0.5}
    assert metrics["production_metrics"] == {
        "total_predictions": 6, "last_prediction_at": "2026-03-04T09:00:00Z",
        "latency_ms": stats["latency_ms"]}


def test_download_streams_the_models_files(registry, api):
    name = registry["name"]
    response = api("GET", f"/models/{name}/1/download", stream=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert "Content-Length" not in response.headers  # streamed, not built first
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == registry["files"]
    assert "MLmodel" in archive.namelist()
    assert api("GET", f"/models/{name}/77/download").status_code == 404


def test_anonymous_requests_are_refused(registry):
    anonymous = Api(registry["server"])
    anonymous.headers = {}
    for method, path in [("GET", "/models/"), ("GET", f"/models/{registry['name']}/1"),
                         ("POST", "/models/batch"), ("GET", "/models/compare")]:
        assert anonymous(method, path).status_code == 401
