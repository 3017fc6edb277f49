"""Tokenized models, contributor impact and lineage, end to end through real
servers with API keys; expected numbers are worked out by hand below."""

import contextlib
import uuid

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.server import get_app_client

from mlflow_hokusai.client import HokusaiClientError
from tests.support.mlflow_client import mlflow_client

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vectors
BOB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
CAROL = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"  # valid, never contributes
SOURCE = "mlflow-artifacts:/tokens/model"


def _headers(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def story(request):
    """One token's life on each server kind: registered at 0.80 accuracy, then
    improved by versions the plain MLflow client creates with tags.

        v1  0.80  registration (baseline 0.80)           improvement  0.00
        v2  0.85  alice, from the run with a dataset      improvement +0.05
        v3  0.83  bob                                      improvement -0.02
        v4  0.90  alice, parent v2 (tag), alias champion   improvement +0.07 (over v3)
    """
    servers = {}
    for kind in ("uvicorn_sqlite", "gunicorn_postgres"):
        server = request.getfixturevalue(kind)
        # An evaluator key (its benchmark values count as verified) that is admin too
        # (the contributor addresses it sets count as proven)
        # (test_benchmarks.py has the registry measure them instead).
        key = server.keystore.create("tokens", owner="tokenizer", scopes="read,evaluator,admin")[1]
        name, token = f"tok-model-{uuid.uuid4().hex[:6]}", f"HOK-{uuid.uuid4().hex[:6]}"
        registered = requests.post(f"{server.url}/api/models/register-tokenized", json={
            "model_uri": SOURCE, "model_name": name, "token_id": token,
            "metric_name": "accuracy", "baseline_value": 0.80,
            "description": "a tokenized model", "tags": {"team": "vision"}},
            headers=_headers(key), timeout=60)
        assert registered.status_code == 201, registered.text
        with mlflow_client(server.url, key) as client:
            experiment = client.create_experiment(f"tok-exp-{uuid.uuid4().hex[:6]}")
            with mlflow.start_run(experiment_id=experiment) as run:
                mlflow.log_input(mlflow.data.from_pandas(
                    pd.DataFrame({"x": [1, 2], "y": [0, 1]}), name="train-set"), context="train")
            run_id = run.info.run_id
            for value, contributor, extra in (("0.85", ALICE, {}), ("0.83", BOB.lower(), {}),
                                              ("0.90", ALICE, {"hokusai_parent_version": "2"})):
                client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags={
                    "benchmark_metric": "accuracy", "benchmark_value": value,
                    "hokusai_contributor": contributor, **extra})
            client.set_registered_model_alias(name, "champion", "4")
        servers[kind] = {"server": server, "key": key, "name": name, "token": token,
                         "run_id": run_id, "experiment": experiment,
                         "registered": registered.json()}
    return servers


@contextlib.contextmanager
def _token(key):
    """MLFLOW_TRACKING_TOKEN for a block (module fixtures cannot use ``monkeypatch``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_TOKEN", key)
        yield


@pytest.fixture(params=["uvicorn_sqlite", "gunicorn_postgres"])
def case(request, story):
    return story[request.param]


def get(case, path, key=None, **params):
    return requests.get(case["server"].url + path, params=params,
                        headers=_headers(key or case["key"]), timeout=60)


def test_registration_answer(case):
    body = case["registered"]
    assert {k: body[k] for k in ("model_name", "version", "token_id", "metric_name",
                                 "baseline_value", "model_uri", "status")} == {
        "model_name": case["name"], "version": 1, "token_id": case["token"],
        "metric_name": "accuracy", "baseline_value": 0.8, "model_uri": SOURCE,
        "status": "registered"}
    assert body["registered_at"].startswith("20")
    version = MlflowClient(case["server"].url)
    with _token(case["key"]):
        tags = version.get_model_version(case["name"], "1").tags
    assert tags == {"hokusai_token_id": case["token"], "benchmark_metric": "accuracy",
                    "benchmark_value": "0.8", "hokusai_status": "registered", "team": "vision"}


@pytest.mark.parametrize("prefix", ["/api", ""])
def test_model_by_token(case, prefix):
    answer = get(case, f"{prefix}/models/by-token/{case['token'].lower()}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_id"], body["model_name"], body["metric_name"], body["baseline_value"]) \
        == (case["token"], case["name"], "accuracy", 0.8)
    assert [(v["version"], v["benchmark_value"], v["stage"], v["aliases"]) for v in
            body["versions"]] == [(1, 0.8, "None", []), (2, 0.85, "None", []),
                                  (3, 0.83, "None", []), (4, 0.9, "None", ["champion"])]
    assert [v["run_id"] for v in body["versions"]][1:] == [case["run_id"]] * 3
    paged = get(case, f"{prefix}/models/by-token/{case['token']}", max_results=3).json()
    assert [v["version"] for v in paged["versions"]] == [1, 2, 3]
    rest = get(case, f"{prefix}/models/by-token/{case['token']}",
               page_token=paged["next_page_token"]).json()
    assert [v["version"] for v in rest["versions"]] == [4] and rest["next_page_token"] is None
    missing = get(case, f"{prefix}/models/by-token/no-such-token")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Token not found: no-such-token"
    assert missing.json()["error"]["code"] == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize("prefix", ["/api", ""])
def test_model_lineage(case, prefix):
    body = get(case, f"{prefix}/models/{case['name']}/lineage", max_results=3).json()
    assert (body["model_id"], body["total_versions"], body["latest_version"]) == \
        (case["name"], 4, 4)
    assert body["cumulative_improvement"] == pytest.approx(0.10)
    assert [(e["version"], e["metrics"], e["contributor"]) for e in body["lineage"]] == [
        (1, {"accuracy": 0.8}, None), (2, {"accuracy": 0.85}, ALICE.lower()),
        (3, {"accuracy": 0.83}, BOB.lower())]
    assert [e["improvement"] for e in body["lineage"]] == pytest.approx([0.0, 0.05, -0.02])
    assert all(e["verified"] and e["value_verified"] for e in body["lineage"])
    last = get(case, f"{prefix}/models/{case['name']}/lineage",
               page_token=body["next_page_token"]).json()
    assert [(e["version"], e["improvement"]) for e in last["lineage"]] == \
        [(4, pytest.approx(0.07))]
    assert get(case, f"{prefix}/models/no-such-model/lineage").json()["detail"] == \
        "Model not found: no-such-model"


@pytest.mark.parametrize("prefix", ["/api", ""])
def test_version_lineage(case, prefix):
    answer = get(case, f"{prefix}/models/{case['name']}/4/lineage")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == f"{case['name']}:4"
    # The API reference's strings, and the details under their own keys.
    assert body["parents"] == [f"{case['name']}:2", f"{case['name']}:1"]
    assert body["training_data"] == ["train-set"]
    assert body["experiments"] == [case["experiment"]]
    assert [p["version"] for p in body["parent_versions"]] == [2, 1]
    assert [(d["name"], len(d["digest"])) for d in body["datasets"]] == [("train-set", 8)]
    assert [(e["experiment_id"], e["run_id"]) for e in body["experiment_runs"]] == \
        [(case["experiment"], case["run_id"])]
    missing = get(case, f"{prefix}/models/{case['name']}/99/lineage")
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"Model not found: {case['name']}:99"
    assert missing.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert get(case, f"{prefix}/models/{case['name']}/x/lineage").status_code == 422


@pytest.mark.parametrize("prefix", ["/api", ""])
def test_contributor_impact(case, prefix):
    alice = get(case, f"{prefix}/models/contributors/{ALICE.lower()}/impact").json()
    mine = [c for c in alice["contributions"] if c["model_id"] == case["name"]]
    assert [(c["version"], round(c["improvement_score"], 6)) for c in mine] == \
        [(2, 0.05), (4, 0.07)]
    assert alice["address"] == ALICE.lower()
    assert alice["first_contribution"] <= alice["last_contribution"]
    bob = get(case, f"{prefix}/models/contributors/{BOB}/impact").json()
    bobs = [c for c in bob["contributions"] if c["model_id"] == case["name"]]
    assert [(c["version"], round(c["improvement_score"], 6)) for c in bobs] == [(3, -0.02)]
    nobody = get(case, f"{prefix}/models/contributors/{CAROL}/impact").json()
    assert nobody == {"address": CAROL.lower(), "total_models_improved": 0,
                      "total_improvement_score": 0.0, "total_delta_one": 0.0,
                      "contributions": [],
                      "first_contribution": None, "last_contribution": None}
    for bad in ("0x123", ALICE[:-1] + "D", "not-an-address"):
        refused = get(case, f"{prefix}/models/contributors/{bad}/impact")
        assert refused.status_code == 400, bad
        assert "Invalid Ethereum address" in refused.json()["detail"]


def test_impact_totals_on_a_fresh_address(each_server_kind):
    """Totals over every model, with an address only this test uses."""
    server = each_server_kind
    # evaluator: its values count (test_benchmarks.py); admin: the addresses it sets count
    key = server.create_key("read,evaluator,admin")
    address = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    with _token(key):
        client = MlflowClient(server.url)
        run_id = client.create_run(client.create_experiment(uuid.uuid4().hex)).info.run_id
    for baseline, values in ((1.0, ("1.5", "1.2")), (10.0, ("9",))):
        name = f"impact-{uuid.uuid4().hex[:6]}"
        assert requests.post(f"{server.url}/api/models/register-tokenized", json={
            "model_uri": SOURCE, "model_name": name, "token_id": f"imp-{uuid.uuid4().hex[:8]}",
            "metric_name": "score", "baseline_value": baseline}, headers=_headers(key),
            timeout=60).status_code == 201
        for value in values:
            with _token(key):
                client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id,
                                            tags={"benchmark_value": value,
                                                  "hokusai_contributor": address})
    body = requests.get(f"{server.url}/models/contributors/{address}/impact",
                        headers=_headers(key), timeout=60).json()
    # +0.5 and -0.3 on the first model, -1.0 on the second: one model improved.
    assert [round(c["improvement_score"], 6) for c in body["contributions"]] == [0.5, -0.3, -1.0]
    assert body["total_models_improved"] == 1
    assert body["total_improvement_score"] == pytest.approx(-0.8)


def _register(server, key, **overrides):
    body = {"model_uri": SOURCE, "model_name": f"val-{uuid.uuid4().hex[:6]}",
            "token_id": f"val-{uuid.uuid4().hex[:8]}", "metric_name": "auc",
            "baseline_value": 0.5, **overrides}
    return requests.post(f"{server.url}/api/models/register-tokenized", json=body,
                         headers=_headers(key), timeout=60)


@pytest.mark.parametrize("overrides, field", [
    ({"token_id": "-bad"}, "token_id"), ({"token_id": "bad-"}, "token_id"),
    ({"token_id": "a_b"}, "token_id"), ({"token_id": "x" * 65}, "token_id"),
    ({"token_id": ""}, "token_id"), ({"baseline_value": "high"}, "baseline_value"),
    ({"baseline_value": None}, "baseline_value"), ({"metric_name": "  "}, "metric_name"),
    ({"contributor_address": "0x12"}, "contributor_address"),
    ({"contributor_address": ALICE[:-1] + "D"}, "contributor_address"),
    ({"tags": {"hokusai_token_id": "sneaky"}}, "tags"), ({"surprise": 1}, "surprise"),
    ({"model_name": ""}, "model_name"),
])
def test_registration_validation_is_422(each_server_kind, overrides, field):
    answer = _register(each_server_kind, each_server_kind.create_key(), **overrides)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert [item["loc"][:2] for item in detail] == [["body", field]]
    assert all({"loc", "msg", "type"} == set(item) for item in detail)


def test_registration_rejects_non_finite_and_missing(each_server_kind):
    key = each_server_kind.create_key()
    raw = requests.post(f"{each_server_kind.url}/api/models/register-tokenized",
                        data=f'{{"model_uri": "{SOURCE}", "model_name": "n", "token_id": "t1", '
                             '"metric_name": "m", "baseline_value": NaN}',
                        headers={**_headers(key), "Content-Type": "application/json"},
                        timeout=60)
    assert raw.status_code == 422
    assert raw.json()["detail"][0]["loc"] == ["body", "baseline_value"]
    missing = requests.post(f"{each_server_kind.url}/api/models/register-tokenized",
                            json={}, headers=_headers(key), timeout=60)
    assert sorted(item["loc"][1] for item in missing.json()["detail"]) == [
        "baseline_value", "metric_name", "model_name", "model_uri", "token_id"]


@pytest.mark.parametrize("uri", ["/etc/passwd", "file:///etc/passwd", "s3://elsewhere/model",
                                 "mlflow-artifacts:/a/../../etc", "C:\\models\\m"])
def test_local_and_foreign_model_uris_are_refused(each_server_kind, uri):
    name = f"uri-{uuid.uuid4().hex[:6]}"
    answer = _register(each_server_kind, each_server_kind.create_key(), model_uri=uri,
                       model_name=name)
    assert answer.status_code == 400, answer.text
    assert "refused" in answer.json()["detail"]
    key = each_server_kind.create_key("read")
    assert requests.get(f"{each_server_kind.url}/api/2.0/mlflow/registered-models/get",
                        params={"name": name}, headers=_headers(key),
                        timeout=60).status_code == 404  # nothing was created


def test_token_conflicts_are_409_and_leave_nothing(each_server_kind):
    server, key = each_server_kind, each_server_kind.create_key()
    first = _register(server, key)
    assert first.status_code == 201
    token = first.json()["token_id"]
    other = f"conflict-{uuid.uuid4().hex[:6]}"
    taken = _register(server, key, token_id=token.upper(), model_name=other)
    assert taken.status_code == 409
    assert taken.json()["detail"] == (f"Token '{token.upper()}' is already registered to model "
                                      f"'{first.json()['model_name']}'")
    second_token = _register(server, key, model_name=first.json()["model_name"])
    assert second_token.status_code == 409
    assert "already bound to token" in second_token.json()["detail"]
    reader = server.create_key("read")
    assert requests.get(f"{server.url}/api/2.0/mlflow/registered-models/get",
                        params={"name": other}, headers=_headers(reader),
                        timeout=60).status_code == 404


def test_scopes(each_server_kind):
    server = each_server_kind
    read_only = server.create_key("read")
    assert _register(server, read_only).status_code == 403
    assert requests.post(f"{server.url}/models/register-tokenized", json={},
                         timeout=60).status_code == 401
    for path in ("/api/models/by-token/x", "/models/x/lineage", "/models/x/1/lineage",
                 f"/models/contributors/{CAROL}/impact"):
        assert requests.get(server.url + path, timeout=60).status_code == 401
        assert requests.get(server.url + path, headers=_headers(read_only),
                            timeout=60).status_code in (200, 404)


def test_python_client(case, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", case["key"])
    client = get_app_client("hokusai", case["server"].url)
    name, token = f"client-{uuid.uuid4().hex[:6]}", f"cli-{uuid.uuid4().hex[:6]}"
    address = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    registered = client.register_tokenized_model(SOURCE, name, token, "f1", 0.7,
                                                 contributor_address=address)
    assert (registered["version"], registered["token_id"]) == (1, token)
    assert client.get_model_by_token(token)["model_name"] == name
    assert client.get_lineage(name)["total_versions"] == 1
    assert client.get_lineage(case["name"], 4)["parent_versions"][0]["version"] == 2
    impact = client.get_contributor_impact(address)
    assert [(c["model_id"], c["improvement_score"]) for c in impact["contributions"]] == \
        [(name, 0.0)]
    with pytest.raises(HokusaiClientError) as missing:
        client.get_model_by_token("nope-nope")
    assert missing.value.status == 404 and missing.value.detail == "Token not found: nope-nope"
