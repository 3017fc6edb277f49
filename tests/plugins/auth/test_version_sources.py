"""A model version's source is judged like a read of what it points into: a
version of one's own model cannot name another principal's run, logged model or
artifacts, and a version that already does (made before the check) does not
serve their files. Real servers (uvicorn + SQLite, gunicorn + PostgreSQL), two
principals, the unmodified MLflow client for the owner's own flow."""

from __future__ import annotations

import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

from tests.support.callers import API, Caller, grant, is_refused
from tests.support.mlflow_client import mlflow_client


@pytest.fixture
def logged(each_server_kind):
    """Alice logs and registers a model with the MLflow client, then hides her
    experiment from Bob; Bob has a registered model of his own."""
    server, tag = each_server_kind, uuid.uuid4().hex[:8]
    alice_key = server.create_key("read,write", owner=f"alice-{tag}")
    alice, bob = Caller(server, alice_key), \
        Caller(server, server.create_key("read,write", owner=f"bob-{tag}"))
    with mlflow_client(server.url, alice_key):
        experiment = mlflow.set_experiment(f"sources-{tag}").experiment_id
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(LinearRegression().fit([[0], [1]], [0, 1]),
                                            name="model", pip_requirements=[],
                                            registered_model_name=f"alice-model-{tag}")
    grant(alice, f"bob-{tag}", "experiment", experiment, "NO_PERMISSIONS")
    bob.ok("POST", f"{API}/registered-models/create", json={"name": f"bob-model-{tag}"})
    return {"server": server, "alice": alice, "bob": bob, "tag": tag, "experiment": experiment,
            "run": run.info.run_id, "model_id": info.model_id,
            "admin": Caller(server, server.admin_key)}


def _attacks(w: dict) -> list[dict]:
    run, model_id, experiment = w["run"], w["model_id"], w["experiment"]
    return [{"source": f"runs:/{run}/model", "run_id": run},
            {"source": f"models:/{model_id}", "model_id": model_id},
            {"source": f"mlflow-artifacts:/{experiment}/models/{model_id}/artifacts",
             "model_id": model_id},
            {"source": f"mlflow-artifacts:/{experiment}/{run}/artifacts/model", "run_id": run}]


def test_a_version_cannot_point_into_an_unreadable_experiment(logged):
    w = logged
    bob, name = w["bob"], f"bob-model-{w['tag']}"
    for attack in _attacks(w):
        refused = bob("POST", f"{API}/model-versions/create", json={"name": name, **attack})
        assert is_refused(refused), (attack, refused.status_code, refused.text)
    for uri in (f"runs:/{w['run']}/model", f"models:/{w['model_id']}"):
        fresh = f"bob-fresh-{uuid.uuid4().hex[:6]}"
        refused = bob("POST", "/models/register", json={"model_name": fresh, "model_data": uri})
        assert is_refused(refused), (uri, refused.status_code, refused.text)
        refused = bob("POST", "/models/register-tokenized",
                      json={"model_name": fresh, "model_uri": uri, "token_id": f"T-{w['tag']}",
                            "metric_name": "accuracy", "baseline_value": 0.5})
        assert is_refused(refused), (uri, refused.status_code, refused.text)
        # Judged before anything was made: no empty model left behind.
        assert bob("GET", f"{API}/registered-models/get", params={"name": fresh}) \
            .status_code == 404
    versions = bob.ok("GET", f"{API}/model-versions/search",
                      params={"filter": f"name='{name}'"}).get("model_versions", [])
    assert versions == []


def test_a_version_made_before_the_check_does_not_serve_the_files(logged):
    w = logged
    bob, alice, name = w["bob"], w["alice"], f"bob-model-{w['tag']}"
    # As a version made before this check, or by an admin: pointing at Alice's model.
    w["admin"].ok("POST", f"{API}/model-versions/create",
                  json={"name": name, "source": f"models:/{w['model_id']}",
                        "model_id": w["model_id"]})
    reads = [("GET", f"{API}/model-versions/get-download-uri",
              {"name": name, "version": "1"}),
             ("GET", "/model-versions/get-artifact",
              {"name": name, "version": "1", "path": "MLmodel"}),
             ("GET", f"/models/{name}/1/download", {})]
    for method, path, params in reads:
        assert is_refused(bob(method, path, params=params)), path
        # Alice may read her experiment, and Bob's model by the default READ.
        answer = alice(method, path, params=params)
        assert answer.status_code == 200, (path, answer.text)
    assert b"flavors" in alice("GET", "/model-versions/get-artifact",
                               params={"name": name, "version": "1", "path": "MLmodel"}).content


def test_a_source_outside_the_artifact_stores_needs_an_admin(logged):
    w = logged
    body = {"name": f"bob-model-{w['tag']}", "source": "s3://somewhere-else/model"}
    assert is_refused(w["bob"]("POST", f"{API}/model-versions/create", json=body))
    w["admin"].ok("POST", f"{API}/model-versions/create", json=body)


def test_the_owner_registers_from_runs_of_her_own(logged, monkeypatch):
    """With the unmodified client: ``registered_model_name`` (in the fixture) and
    ``register_model`` of her own run, and files served back."""
    w = logged
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", w["alice"].key)
    client = MlflowClient(w["server"].url)
    name = f"alice-model-{w['tag']}"
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == ["1"]
    with mlflow_client(w["server"].url, w["alice"].key):
        version = mlflow.register_model(f"runs:/{w['run']}/model", name)
    assert version.version == "2"
    assert w["alice"]("GET", "/model-versions/get-artifact",
                      params={"name": name, "version": "2", "path": "MLmodel"}).status_code == 200
    # Bob may read Alice's model but not her experiment: the files stay hers.
    assert is_refused(w["bob"]("GET", f"/models/{name}/2/download"))


@pytest.mark.parametrize("source, expected", [
    ("runs:/r1/model", [("run", "r1")]),
    ("models:/m-0123456789abcdef0123456789abcdef", [("logged_model",
                                                     "m-0123456789abcdef0123456789abcdef")]),
    ("models:/churn/3", [("registered_model", "churn")]),
    ("models:/churn@champion", [("registered_model", "churn")]),
    ("mlflow-artifacts:/7/r1/artifacts/model", [("artifact", "7/r1/artifacts/model")]),
    ("mlflow-artifacts://host/workspaces/a/7/x", [("artifact", "workspaces/a/7/x")]),
    ("/srv/artifacts/7/r1/artifacts/model", [("artifact", "7/r1/artifacts/model")]),
    ("file:///srv/artifacts/8/r2/artifacts/model", [("artifact", "8/r2/artifacts/model")]),
    # Judged where the server reads: the normalised path.
    ("/srv/artifacts/7/../9/r3/artifacts", [("artifact", "9/r3/artifacts")]),
    ("s3://bucket/mlflow/4/r4/artifacts", [("artifact", "4/r4/artifacts")]),
])
def test_what_a_source_points_into(monkeypatch, source, expected):
    from mlflow_hokusai.plugins.auth import version_sources

    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_DESTINATION", "/srv/artifacts")
    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_ROOT", "s3://bucket/mlflow")
    assert version_sources.resources(source) == expected
    assert version_sources.resources(source, "r9", "m-9") == \
        [*expected, ("run", "r9"), ("logged_model", "m-9")]


@pytest.mark.parametrize("source", ["s3://other-bucket/model", "/etc/model", "dbfs:/x",
                                    "https://example.com/model", "/srv/artifacts-evil/7/x",
                                    "s3://bucket/mlflow-other/4/x", ""])
def test_a_source_outside_the_stores_is_unattributable(monkeypatch, source):
    from mlflow_hokusai.plugins.auth import version_sources

    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_DESTINATION", "/srv/artifacts")
    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_ROOT", "s3://bucket/mlflow")
    with pytest.raises(version_sources.Unattributable):
        version_sources.resources(source)
