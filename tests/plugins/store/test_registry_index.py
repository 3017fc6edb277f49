"""The registry index (tokens, benchmarks, contributions, lineage, owners), built
from the unmodified MLflow client's standard calls through a real server, on
SQLite and PostgreSQL, and kept in step through updates and deletions."""

import concurrent.futures
import uuid

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.rest_utils import MlflowHostCreds, http_request

from mlflow_hokusai.db.engine import to_sqlalchemy_url
from tests.support.index_helpers import run_lineage, token_row, version_owner_rows, version_rows

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vectors
BOB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


@pytest.fixture(params=["uvicorn_sqlite", "gunicorn_postgres", "hokusai_scheme"])
def server(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def client(server, monkeypatch):
    key = server.keystore.create("indexer", owner="ivy", scopes="read,write")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key)
    return MlflowClient(server.url)


def _name(prefix="idx"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _run(client):
    experiment = client.create_experiment(_name("exp"))
    return experiment, client.create_run(experiment).info.run_id


def _version(client, name, run_id=None, **tags):
    """A version from a run's model (the server refuses sources no run backs)."""
    if run_id is None:
        if not hasattr(client, "shared_run"):
            client.shared_run = _run(client)[1]
        run_id = client.shared_run
    return int(client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id,
                                           tags=tags).version)


def test_index_is_built_from_standard_client_calls(server, client):
    name, token = _name(), f"Tok-{uuid.uuid4().hex[:6]}"
    experiment, run_id = _run(client)
    client.create_registered_model(name, tags={"benchmark_direction": "lower"})
    _version(client, name, run_id, hokusai_token_id=token, benchmark_metric="loss",
             benchmark_value="0.50")
    _version(client, name, run_id, benchmark_metric="loss", benchmark_value="0.40",
             hokusai_contributor=ALICE)
    _version(client, name, None, benchmark_metric="loss", benchmark_value="0.45",
             hokusai_contributor=BOB.lower(), hokusai_parent_version="1")

    bound = token_row(server.database_uri, token.upper())  # case-insensitive lookup
    assert (bound["token_id"], bound["model_name"], bound["baseline_value"]) == (token, name, 0.5)
    rows = version_rows(server.database_uri, name)
    assert sorted(rows) == [1, 2, 3]
    assert rows[1]["run_id"] == run_id
    assert run_lineage(server.database_uri, run_id)["experiment_id"] == experiment
    assert [rows[v]["parent_version"] for v in (1, 2, 3)] == [None, 1, 1]
    assert rows[3]["parent_explicit"] and not rows[2]["parent_explicit"]
    # Lower is better (the model's tag): v2 improves 0.50 -> 0.40, v3 worsens 0.40 -> 0.45.
    assert rows[2]["contributor"] == ALICE.lower() and rows[2]["baseline_value"] == 0.5
    assert rows[2]["improvement"] == pytest.approx(0.10)
    assert rows[3]["baseline_value"] == 0.4 and rows[3]["improvement"] == pytest.approx(-0.05)
    assert rows[1]["contributor"] is None and rows[1]["improvement"] == 0.0  # the baseline
    owners = version_owner_rows(server.database_uri, name)
    assert {row["owner"] for row in owners.values()} == {"ivy"}
    assert all(row["owner_key_id"] for row in owners.values())
    # MLflow's own column holds the plain name (no key id stamped into it).
    assert client.get_model_version(name, "2").user_id == "ivy"


def test_updates_and_deletions_keep_the_index_in_step(server, client):
    name, token = _name(), f"tok-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    _version(client, name, hokusai_token_id=token, benchmark_value="10")
    _version(client, name, benchmark_value="12", hokusai_contributor=ALICE)
    _version(client, name, benchmark_value="15", hokusai_contributor=BOB)
    rows = version_rows(server.database_uri, name)
    assert [rows[v]["improvement"] for v in (2, 3)] == [2.0, 3.0]

    client.set_model_version_tag(name, "2", "benchmark_value", "11")  # moves v2 and v3
    rows = version_rows(server.database_uri, name)
    assert [rows[v]["improvement"] for v in (2, 3)] == [1.0, 4.0]

    client.set_model_version_tag(name, "3", "benchmark_direction", "lower")
    assert version_rows(server.database_uri, name)[3]["improvement"] == -4.0
    client.delete_model_version_tag(name, "3", "benchmark_direction")

    client.delete_model_version(name, "2")  # v3's baseline and parent fall back to v1
    rows = version_rows(server.database_uri, name)
    assert sorted(rows) == [1, 3]
    assert (rows[3]["parent_version"], rows[3]["baseline_value"], rows[3]["improvement"]) == \
        (1, 10.0, 5.0)

    client.delete_model_version_tag(name, "3", "hokusai_contributor")
    assert version_rows(server.database_uri, name)[3]["contributor"] is None

    client.set_model_version_tag(name, "1", "benchmark_value", "9")
    # The baseline follows the version that holds it (what a rebuild reads too).
    assert token_row(server.database_uri, token)["baseline_value"] == 9.0
    rows = version_rows(server.database_uri, name)
    assert (rows[1]["improvement"], rows[3]["improvement"]) == (0.0, 6.0)

    renamed = _name("renamed")
    client.rename_registered_model(name, renamed)
    assert version_rows(server.database_uri, name) == {}
    assert sorted(version_rows(server.database_uri, renamed)) == [1, 3]
    assert token_row(server.database_uri, token)["model_name"] == renamed

    client.delete_registered_model(renamed)
    assert version_rows(server.database_uri, renamed) == {}
    assert token_row(server.database_uri, token) is None
    # The token is free again: another model may take it.
    other = _name()
    client.create_registered_model(other)
    _version(client, other, hokusai_token_id=token)
    assert token_row(server.database_uri, token)["model_name"] == other


def test_a_token_moves_only_when_no_version_holds_it(server, client):
    first, second = _name(), _name()
    token = f"tok-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(first)
    client.create_registered_model(second)
    _version(client, first, hokusai_token_id=token)
    _version(client, second)
    with pytest.raises(MlflowException, match=f"Token '{token.upper()}' is already bound to "
                                              f"registered model '{first}'") as refused:
        client.set_model_version_tag(second, "1", "hokusai_token_id", token.upper())
    assert refused.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert "hokusai_token_id" not in client.get_model_version(second, "1").tags
    with pytest.raises(MlflowException, match="already bound to token"):
        _version(client, first, hokusai_token_id="another-token")
    assert len(client.search_model_versions(f"name='{first}'")) == 1  # nothing half-written

    client.delete_model_version_tag(first, "1", "hokusai_token_id")
    client.set_model_version_tag(second, "1", "hokusai_token_id", token)
    assert token_row(server.database_uri, token)["model_name"] == second


@pytest.mark.parametrize("key, value, message", [
    ("hokusai_token_id", "-bad-", "Invalid hokusai_token_id '-bad-'"),
    ("hokusai_token_id", "x" * 65, "Invalid hokusai_token_id"),
    ("benchmark_value", "fast", "Invalid benchmark_value 'fast': must be a finite number"),
    ("benchmark_value", "inf", "must be a finite number"),
    ("benchmark_direction", "up", "use 'higher' or 'lower'"),
    ("hokusai_contributor", "0x123", "expected 0x followed by 40 hexadecimal digits"),
    ("hokusai_contributor", ALICE[:-1] + "D", "mixed case fails the EIP-55 checksum"),
    ("hokusai_parent_version", "2", "must be an existing earlier version"),
    ("hokusai_parent_version", "one", "must be a positive version number"),
])
def test_bad_values_are_refused_and_nothing_is_written(server, client, key, value, message):
    name = _name()
    client.create_registered_model(name)
    _version(client, name, benchmark_value="1")
    with pytest.raises(MlflowException, match=message) as refused:
        _version(client, name, **{key: value})
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert refused.value.get_http_status_code() == 400
    with pytest.raises(MlflowException, match=message):
        client.set_model_version_tag(name, "1", key, value)
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == ["1"]
    assert client.get_model_version(name, "1").tags == {"benchmark_value": "1"}
    assert sorted(version_rows(server.database_uri, name)) == [1]


def test_concurrent_writers_leave_a_consistent_index(server, client):
    name, token = _name(), f"tok-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    _version(client, name, hokusai_token_id=token, benchmark_value="0")

    # Registration is limited to 20 a minute per key: one key for all 25 versions
    # waited a minute on the limit. Each writer has a key of its own (of the same
    # owner, who may write the model), as concurrent writers in production have,
    # and sends through MLflow's REST layer as the client does (with its retries).
    def write(worker):
        creds = MlflowHostCreds(server.url, token=server.keystore.create(
            f"writer-{worker}", owner="ivy", scopes="read,write")[1])
        for step in range(4):
            tags = {"hokusai_token_id": token, "benchmark_value": str(worker * 10 + step),
                    "hokusai_contributor": ALICE if worker % 2 else BOB}
            answer = http_request(creds, "/api/2.0/mlflow/model-versions/create", "POST", json={
                "name": name, "source": f"runs:/{client.shared_run}/model",
                "run_id": client.shared_run,
                "tags": [{"key": k, "value": v} for k, v in tags.items()]})
            assert answer.status_code == 200, answer.text

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(6)))
    rows = version_rows(server.database_uri, name)
    assert sorted(rows) == list(range(1, 26))
    for number in range(2, 26):
        row = rows[number]
        previous = rows[number - 1]
        assert row["parent_version"] == number - 1
        assert row["baseline_value"] == previous["benchmark_value"]
        assert row["improvement"] == row["benchmark_value"] - previous["benchmark_value"]
    assert token_row(server.database_uri, token)["model_name"] == name


def test_writes_that_bypass_the_hokusai_store_are_indexed(server, client):
    """MLflow's stock store on the same database, as a plain ``mlflow server``, a
    script or MLflow's job runner would write: the database keeps the index."""
    stock = MlflowClient(to_sqlalchemy_url(server.database_uri))
    assert type(stock._get_registry_client().store).__name__ == "SqlAlchemyStore"
    name, token = _name(), f"tok-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    _version(client, name, hokusai_token_id=token, benchmark_value="1.0")
    stock.create_model_version(name, "mlflow-artifacts:/m", tags={
        "benchmark_value": "1.5", "hokusai_contributor": ALICE, "benchmark_metric": "auc"})
    stock.set_model_version_tag(name, "1", "benchmark_value", "0.5")
    rows = version_rows(server.database_uri, name)
    assert (rows[2]["contributor"], rows[2]["benchmark_metric"], rows[2]["parent_version"]) == \
        (ALICE.lower(), "auc", 1)
    assert rows[2]["improvement"] == 1.0  # 1.5 over the version it follows, now 0.5

    other = _name()
    stock.create_registered_model(other)
    stock.create_model_version(other, "mlflow-artifacts:/o")
    with pytest.raises(MlflowException, match="hokusai:token_bound"):
        stock.set_model_version_tag(other, "1", "hokusai_token_id", token.upper())
    assert "hokusai_token_id" not in stock.get_model_version(other, "1").tags
    assert version_rows(server.database_uri, other)[1]["token_id"] is None

    stock.delete_model_version(name, "1")
    rows = version_rows(server.database_uri, name)
    assert sorted(rows) == [2] and rows[2]["parent_version"] is None
    assert token_row(server.database_uri, token) is None  # no live version holds it
    stock.set_model_version_tag(other, "1", "hokusai_token_id", token)
    assert token_row(server.database_uri, token)["model_name"] == other


def test_one_free_token_raced_onto_two_models_binds_to_one(server, client):
    token = f"tok-{uuid.uuid4().hex[:6]}"
    names = [_name() for _ in range(4)]
    for name in names:
        client.create_registered_model(name)

    def bind(name):
        try:
            return _version(client, name, hokusai_token_id=token)
        except MlflowException as error:
            assert error.error_code == "RESOURCE_ALREADY_EXISTS", error.message
            assert f"Token '{token}' is already bound to registered model" in error.message
            return None

    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        created = dict(zip(names, pool.map(bind, names), strict=True))
    winners = [name for name, version in created.items() if version is not None]
    assert len(winners) == 1
    assert token_row(server.database_uri, token)["model_name"] == winners[0]
    for name in names:
        assert sorted(version_rows(server.database_uri, name)) == ([1] if name in winners else [])


def test_owners_are_recorded_and_readable(server, client):
    experiment, run_id = _run(client)
    name = _name()
    client.create_registered_model(name)
    _version(client, name, run_id)
    headers = {"Authorization": f"Bearer {server.create_key('read')}"}
    for path, resource in ((f"experiments/{experiment}", "experiment"),
                           (f"runs/{run_id}", "run"),
                           (f"registered-models/{name}", "registered_model"),
                           (f"model-versions/{name}/1", "model_version")):
        answer = requests.get(f"{server.url}/api/owners/{path}", headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["resource_type"], body["owner"]) == (resource, "ivy")
        assert body["key_id"] and isinstance(body["created_at"], int)
    missing = requests.get(f"{server.url}/api/owners/runs/{uuid.uuid4().hex}", headers=headers,
                           timeout=30)
    assert missing.status_code == 404 and "No owner recorded" in missing.json()["detail"]
    assert requests.get(f"{server.url}/api/owners/runs/{run_id}", timeout=30).status_code == 401
