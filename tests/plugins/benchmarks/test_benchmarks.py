"""Benchmarks measured by the registry (issue 16): a token registered with a
small dataset, versions logged with the unmodified MLflow client and measured
by the server in its sandbox; only verified values count toward impact and
lineage. Hostile model code is stopped and reported, and the server serves on."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import uuid

import mlflow
import mlflow.server
import pandas as pd
import pytest
import requests
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from tests.support.hokusai_servers import start_server
from tests.support.mlflow_client import mlflow_client
from tests.support.models_api import Api

SECRET = "sandbox-test-secret-" + uuid.uuid4().hex
ADDRESS_A = "0x" + "a1" * 20
ADDRESS_B = "0x" + "b2" * 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db_file = tmp_path_factory.mktemp("bench-sqlite") / "mlflow.db"
    running = start_server(tmp_path_factory, "bench", f"sqlite:///{db_file}", server="uvicorn",
                           extra_env={"HOKUSAI_TEST_SECRET": SECRET})
    yield running
    running.server.stop()


def _data():
    features, labels = make_classification(n_samples=300, n_features=5, n_informative=3,
                                           random_state=3)
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(5)])
    frame["label"] = labels
    return frame.iloc[:200], frame.iloc[200:]


def _log(server, api, experiment: str, models: dict,
         artifacts: dict | None = None) -> tuple[str, dict[str, str]]:
    """Log models (sklearn objects or models-from-code files) in one run of
    ``experiment`` on the server, with the key of ``api``; their URIs."""
    uris = {}
    with mlflow_client(server.url, api.headers["X-API-Key"]):
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            for name, model in models.items():
                # pip_requirements=[] here and wherever the suite logs a model: the
                # server never installs a model's requirements, and MLflow infers
                # them by loading the model in a Python process of its own (5 s).
                if isinstance(model, str):
                    info = mlflow.pyfunc.log_model(name=name, python_model=model,
                                                   pip_requirements=[])
                else:
                    info = mlflow.sklearn.log_model(model, name=name, pip_requirements=[])
                uris[name] = info.model_uri
            for path, local in (artifacts or {}).items():
                mlflow.log_artifact(local, artifact_path=path)
    return run.info.run_id, uris


@pytest.fixture(scope="module")
def token(server, tmp_path_factory):
    """Model T with three versions: a weak baseline, a better one and a worse one."""
    owner = f"bench-{uuid.uuid4().hex[:6]}"
    api = Api(server, "read,write", owner=owner)
    train, holdout = _data()
    x, y = train.drop(columns="label"), train["label"]
    models = {"weak": LogisticRegression().fit(x[:8], y[:8]),
              "better": LogisticRegression().fit(x, y),
              "worse": DummyClassifier(strategy="constant", constant=1).fit(x, y)}
    csv = tmp_path_factory.mktemp("bench-data") / "holdout.csv"
    holdout.to_csv(csv, index=False)
    run_id, uris = _log(server, api, owner, models, {"data": str(csv)})
    name, token_id = f"bench-{uuid.uuid4().hex[:8]}", f"tok-{uuid.uuid4().hex[:8]}"
    spec = {"metric": "accuracy", "direction": "higher", "target_column": "label",
            "dataset_uri": f"runs:/{run_id}/data/holdout.csv"}
    for number, key in enumerate(models, start=1):
        body = {"model_uri": uris[key], "model_name": name, "token_id": token_id,
                "metric_name": "accuracy", "baseline_value": 0.5,
                **({"benchmark": spec} if number == 1 else {})}
        registered = api("POST", "/models/register-tokenized", json=body)
        assert registered.status_code == 201, registered.text
        assert registered.json()["version"] == number
        if number == 1:
            assert registered.json()["benchmark_digest"] == \
                "sha256:" + hashlib.sha256(csv.read_bytes()).hexdigest()
    expected = {number: accuracy_score(holdout["label"],
                                       models[key].predict(holdout.drop(columns="label")))
                for number, key in enumerate(models, start=1)}
    return {"api": api, "name": name, "token_id": token_id, "expected": expected,
            "spec": spec, "holdout": holdout, "run_id": run_id}


def _set_tag(api, name, version, key, value):
    answer = api("POST", "/2.0/mlflow/model-versions/set-tag",
                 json={"name": name, "version": str(version), "key": key, "value": value})
    assert answer.status_code == 200, answer.text


def test_measured_values_are_verified_and_hand_set_ones_are_not(server, token, monkeypatch):
    api, name = token["api"], token["name"]
    admin = Api(server, "admin")
    _set_tag(admin, name, 2, "hokusai_contributor", ADDRESS_A)
    _set_tag(admin, name, 3, "hokusai_contributor", ADDRESS_B)

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", api.headers["X-API-Key"])
    spec = mlflow.server.get_app_client("hokusai", server.url).get_benchmark(token["token_id"])
    assert (spec["metric"], spec["direction"], spec["target_column"]) == \
        ("accuracy", "higher", "label")
    assert spec["dataset_uri"].startswith("mlflow-artifacts:/hokusai-benchmarks/")

    # Before any measurement every value is hand-set: nothing counts.
    before = api("GET", f"/models/{name}/lineage").json()
    assert before["cumulative_improvement"] == 0
    assert [entry["value_verified"] for entry in before["lineage"]] == [False] * 3

    measured = {}
    for number in (1, 2, 3):
        answer = api("POST", f"/models/{name}/{number}/benchmark")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["value"] == pytest.approx(token["expected"][number], abs=1e-12)
        assert body["dataset_digest"] == spec["dataset_digest"]
        assert body["mlflow_version"] == mlflow.__version__
        assert body["sandbox"] == "bwrap" and body["rows"] == len(token["holdout"])
        run = api("GET", "/2.0/mlflow/runs/get", params={"run_id": body["run_id"]}).json()
        assert {m["key"]: m["value"] for m in run["run"]["data"]["metrics"]} == \
            pytest.approx({"accuracy": body["value"]})
        measured[number] = body["value"]
    assert measured[1] < measured[2] and measured[3] < measured[2]

    lineage = api("GET", f"/models/{name}/lineage").json()
    assert [(e["version"], e["value_verified"], e["verified"]) for e in lineage["lineage"]] == \
        [(1, True, True), (2, True, True), (3, True, True)]
    assert lineage["cumulative_improvement"] == pytest.approx(measured[3] - measured[1])
    impact_a = api("GET", f"/models/contributors/{ADDRESS_A}/impact").json()
    assert impact_a["total_improvement_score"] == pytest.approx(measured[2] - measured[1])
    assert impact_a["total_models_improved"] == 1 and impact_a["contributions"][0]["verified"]
    impact_b = api("GET", f"/models/contributors/{ADDRESS_B}/impact").json()
    assert impact_b["total_improvement_score"] == pytest.approx(measured[3] - measured[2])
    assert measured[3] - measured[2] < 0
    token["measured"] = measured

    # A writer flips the direction tags (version and model): the verified numbers
    # stay those of the token's benchmark, "higher".
    for direction in ("lower", "higher"):  # flipped, then back for what follows
        for number in (2, 3):
            _set_tag(api, name, number, "benchmark_direction", direction)
        flipped = api("POST", "/2.0/mlflow/registered-models/set-tag",
                      json={"name": name, "key": "benchmark_direction", "value": direction})
        assert flipped.status_code == 200, flipped.text
        assert api("GET", f"/models/{name}/lineage").json() == lineage
        assert api("GET", f"/models/contributors/{ADDRESS_A}/impact").json() == impact_a
        assert api("GET", f"/models/contributors/{ADDRESS_B}/impact").json() == impact_b

    # A writer types a better value for version 3: visible, unverified, not counted.
    _set_tag(api, name, 3, "benchmark_value", "0.99")
    lineage = api("GET", f"/models/{name}/lineage").json()
    third = lineage["lineage"][2]
    assert third["metrics"] == {"accuracy": 0.99}
    assert (third["value_verified"], third["verified"]) == (False, False)
    assert lineage["cumulative_improvement"] == pytest.approx(measured[2] - measured[1])
    impact_b = api("GET", f"/models/contributors/{ADDRESS_B}/impact").json()
    contribution = impact_b["contributions"][0]
    assert contribution["improvement_score"] == pytest.approx(0.99 - measured[2])
    assert contribution["verified"] is False
    assert impact_b["total_improvement_score"] == 0 and impact_b["total_models_improved"] == 0

    # An admin's typed value does not count either; an evaluator key's does.
    _set_tag(admin, name, 3, "benchmark_value", "0.98")
    assert api("GET", f"/models/{name}/lineage").json()["lineage"][2]["verified"] is False
    evaluator_owner = f"evaluator-{uuid.uuid4().hex[:6]}"
    granted = api("POST", "/3.0/mlflow/users/permissions/grant", json={
        "username": evaluator_owner, "resource_type": "registered_model", "resource_id": name,
        "permission": "EDIT"})
    assert granted.status_code == 200, granted.text
    _set_tag(Api(server, "evaluator", owner=evaluator_owner), name, 3, "benchmark_value", "0.97")
    lineage = api("GET", f"/models/{name}/lineage").json()
    assert lineage["lineage"][2]["verified"] is True
    assert lineage["cumulative_improvement"] == pytest.approx(0.97 - measured[1])
    assert lineage["lineage"][2]["improvement"] == pytest.approx(0.97 - measured[2])


def test_an_unproven_address_on_a_measured_version_is_not_credited(server, token):
    api, name = token["api"], token["name"]
    address = "0x" + "c3" * 20
    _set_tag(api, name, 2, "hokusai_contributor", address)  # a writer, not admin: unproven
    entry = api("GET", f"/models/{name}/lineage").json()["lineage"][1]
    assert (entry["contributor"], entry["value_verified"]) == (address, True)
    assert (entry["address_verified"], entry["verified"]) == (False, False)
    impact = api("GET", f"/models/contributors/{address}/impact").json()
    contribution = impact["contributions"][0]
    assert contribution["improvement_score"] > 0 and contribution["value_verified"]
    assert (contribution["address_verified"], contribution["verified"]) == (False, False)
    assert (impact["total_improvement_score"], impact["total_models_improved"]) == (0, 0)
    _set_tag(Api(server, "admin"), name, 2, "hokusai_contributor", ADDRESS_A)


def test_measurements_and_replaced_values_are_on_the_ledger(server, token):
    answer = Api(server, "admin")("GET", "/ledger", params={"token_id": token["token_id"]})
    assert answer.status_code == 200, answer.text
    entries = [json.loads(line) for line in answer.text.splitlines()]
    digest = "sha256:" + hashlib.sha256(
        token["holdout"].to_csv(index=False).encode()).hexdigest()
    measured = [entry for entry in entries if entry["event"] == "benchmark_measured"
                and entry["data"].get("run_id")]
    assert [(e["model_name"], e["version"]) for e in measured] == \
        [(token["name"], number) for number in (1, 2, 3)]
    for entry in measured:
        data = entry["data"]
        assert data["value"] == token["measured"][entry["version"]]
        assert (data["dataset_digest"], data["mlflow_version"], data["metric"]) == \
            (digest, mlflow.__version__, "accuracy")
        assert len(data["run_id"]) == 32
    superseded = [entry for entry in entries if entry["event"] == "value_superseded"]
    assert superseded[0]["version"] == 3
    assert superseded[0]["data"] == {"old_value": token["measured"][3], "new_value": 0.99,
                                     "verified": False}


def test_who_may_set_and_measure(server, token):
    name, token_id = token["name"], token["token_id"]
    stranger = Api(server, "read,write")
    refused = stranger("PUT", f"/tokens/{token_id}/benchmark", json=token["spec"])
    assert refused.status_code == 403, refused.text
    assert "MANAGE on registered_model" in refused.json()["detail"]
    refused = stranger("POST", f"/models/{name}/2/benchmark")
    assert refused.status_code == 403 and "EDIT on registered_model" in refused.text
    assert Api(server, "read")("POST", f"/models/{name}/2/benchmark").status_code == 403
    bad = token["api"]("PUT", f"/tokens/{token_id}/benchmark",
                       json={**token["spec"], "target_column": "nope"})
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    bad = token["api"]("PUT", f"/tokens/{token_id}/benchmark", json={**token["spec"],
                                                                     "metric": "vibes"})
    assert bad.status_code == 422


HOSTILE = {
    "reads_env": "data = os.environ['HOKUSAI_TEST_SECRET']",
    "reads_db": "data = open({db!r}).read()",
    "opens_socket": "socket.create_connection(('127.0.0.1', {port}), timeout=5)",
    "writes_outside": "open({outside!r}, 'w').write('pwned')",
}
MODEL_CODE = """
import os, socket, time
import mlflow.pyfunc
from mlflow.models import set_model

class Hostile(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        {action}
        return [0] * len(model_input)

set_model(Hostile())
"""


def _hostile_token(server, tmp_path, actions: dict[str, str]):
    """A token whose versions run ``actions`` (name -> code) when predicting:
    (its owner's Api, its model's name, its id)."""
    owner = f"hostile-{uuid.uuid4().hex[:6]}"
    api = Api(server, "read,write", owner=owner)
    _, holdout = _data()
    csv = tmp_path / "holdout.csv"
    holdout.to_csv(csv, index=False)
    files = {}
    for key, action in actions.items():
        files[key] = str(tmp_path / f"{key}.py")
        with open(files[key], "w") as handle:
            handle.write(textwrap.dedent(MODEL_CODE).replace("{action}", action))
    run_id, uris = _log(server, api, owner, files, {"data": str(csv)})
    name, token_id = f"hostile-{uuid.uuid4().hex[:8]}", f"evil-{uuid.uuid4().hex[:8]}"
    spec = {"metric": "accuracy", "direction": "higher", "target_column": "label",
            "dataset_uri": f"runs:/{run_id}/data/holdout.csv"}
    for number, key in enumerate(actions, start=1):
        registered = api("POST", "/models/register-tokenized", json={
            "model_uri": uris[key], "model_name": name, "token_id": token_id,
            "metric_name": "accuracy", "baseline_value": 0.5,
            **({"benchmark": spec} if number == 1 else {})})
        assert registered.status_code == 201, registered.text
    return api, name, token_id


def test_hostile_model_code_is_stopped_and_reported(server, tmp_path):
    outside = server.server.workdir / f"pwned-{uuid.uuid4().hex[:6]}"
    db = next(server.server.workdir.parent.glob("bench-sqlite*/mlflow.db"))
    actions = {key: code.format(db=str(db), port=server.server.port, outside=str(outside))
               for key, code in HOSTILE.items()}
    api, name, _ = _hostile_token(server, tmp_path, actions)
    expected = {"reads_env": "KeyError", "reads_db": "FileNotFoundError",
                "opens_socket": "ConnectionRefusedError", "writes_outside": "FileNotFoundError"}
    for number, key in enumerate(actions, start=1):
        answer = api("POST", f"/models/{name}/{number}/benchmark")
        assert answer.status_code == 422, (key, answer.text)
        detail = answer.json()["detail"]
        assert detail.startswith("Model evaluation failed (bwrap sandbox): the model's code "
                                 f"raised {expected[key]}"), (key, detail)
        assert SECRET not in answer.text
    assert not outside.exists()
    lineage = api("GET", f"/models/{name}/lineage").json()  # the server serves on
    assert [entry["value_verified"] for entry in lineage["lineage"]] == [False] * 4
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_a_changed_dataset_copy_is_refused_until_the_benchmark_is_set_again(server, tmp_path):
    api, name, token_id = _hostile_token(server, tmp_path, {"zeros": "pass"})
    spec = api("GET", f"/tokens/{token_id}/benchmark").json()
    copy = os.path.join(server.server.artifacts,
                        spec["dataset_uri"].removeprefix("mlflow-artifacts:/"))
    with open(copy, "a") as handle:
        handle.write("0,0,0,0,0,1\n")
    answer = api("POST", f"/models/{name}/1/benchmark")
    assert answer.status_code == 422, answer.text
    assert (answer.json()["error_code"], answer.json()["reason"]) == \
        ("EVALUATION_FAILED", "dataset digest mismatch")

    # The model's MANAGE holder (its creator) sets the benchmark again: a fresh copy.
    changed = {key: spec[key] for key in ("metric", "target_column")}
    changed.update(direction="lower", dataset_uri=spec["source_uri"])
    answer = api("PUT", f"/tokens/{token_id}/benchmark", json=changed)
    assert answer.status_code == 200, answer.text
    again = api("GET", f"/tokens/{token_id}/benchmark").json()
    assert again == answer.json()
    assert (again["direction"], again["dataset_digest"]) == ("lower", spec["dataset_digest"])
    assert again["set_by"] == spec["set_by"] and again["set_at"] >= spec["set_at"]
    assert api("POST", f"/models/{name}/1/benchmark").status_code == 200


@pytest.fixture(scope="module")
def short_server(tmp_path_factory):
    db_file = tmp_path_factory.mktemp("bench-short") / "mlflow.db"
    running = start_server(tmp_path_factory, "bench-short", f"sqlite:///{db_file}",
                           server="uvicorn", extra_env={"HOKUSAI_SANDBOX_TIMEOUT_SECONDS": "3"})
    yield running
    running.server.stop()


def test_a_model_past_the_time_limit_is_killed(short_server, tmp_path):
    api, name, _ = _hostile_token(short_server, tmp_path, {"sleeps": "time.sleep(10 ** 6)"})
    answer = api("POST", f"/models/{name}/1/benchmark")
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == (
        "Model evaluation stopped (bwrap sandbox): the evaluation ran past the time limit "
        "of 3 s and was stopped")
    assert api("GET", f"/models/{name}/lineage").status_code == 200


def test_verified_values_follow_a_renamed_model_and_go_with_a_deleted_one(server, token):
    import sqlalchemy as sa

    api, name = token["api"], token["name"]
    renamed = f"{name}-renamed"
    answer = api("POST", "/2.0/mlflow/registered-models/rename",
                 json={"name": name, "new_name": renamed})
    assert answer.status_code == 200, answer.text
    lineage = api("GET", f"/models/{renamed}/lineage").json()
    assert [entry["value_verified"] for entry in lineage["lineage"]][:2] == [True, True]
    answer = api("DELETE", "/2.0/mlflow/registered-models/delete", json={"name": renamed})
    assert answer.status_code == 200, answer.text
    engine = sa.create_engine(server.database_uri)
    with engine.connect() as connection:
        left = connection.execute(sa.text(
            "SELECT count(*) FROM hokusai_verified_values WHERE model_name IN (:a, :b)"),
            {"a": name, "b": renamed}).scalar()
    engine.dispose()
    assert left == 0  # a later model of either name starts unverified
