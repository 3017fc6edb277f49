"""The audit trail: every write through the server leaves a record, failed ones
too, read back with GET /api/audit (admin) with filters and pagination."""

import threading
import time
import uuid

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.support.audit import audit, bearer, wait_for


@pytest.fixture
def writer(each_server_kind, monkeypatch):
    owner = f"auditor-{uuid.uuid4().hex[:6]}"
    key = each_server_kind.keystore.create("audit", owner=owner, scopes="read,write")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key[1])
    return each_server_kind, owner, key[0].id, MlflowClient(each_server_kind.url)


def test_writes_are_recorded_with_principal_key_and_resources(writer):
    server, owner, key_id, client = writer
    experiment = client.create_experiment(f"audited-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "alpha", "1")
    name = f"audited-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.search_experiments()  # a read-only POST: not a write

    records = wait_for(server, 5, principal=owner)
    assert [r["action"] for r in records] == [
        "POST /api/2.0/mlflow/model-versions/create",
        "POST /api/2.0/mlflow/registered-models/create",
        "POST /api/2.0/mlflow/runs/log-parameter",
        "POST /api/2.0/mlflow/runs/create",
        "POST /api/2.0/mlflow/experiments/create",
    ]  # newest first
    assert {r["key_id"] for r in records} == {key_id}
    assert {r["status"] for r in records} == {200}
    assert all(len(r["request_id"]) == 32 for r in records)
    assert records[4]["experiment_id"] == experiment
    assert (records[3]["experiment_id"], records[3]["run_id"]) == (experiment, run.info.run_id)
    assert records[2]["run_id"] == run.info.run_id
    assert (records[1]["model_name"], records[0]["model_name"], records[0]["model_version"]) == \
        (name, name, "1")
    by_run = wait_for(server, 3, run_id=run.info.run_id)
    assert {r["action"].rsplit("/", 2)[-2] for r in by_run} >= {"runs", "model-versions"}


def test_failed_and_refused_writes_are_recorded(writer):
    server, owner, _, client = writer
    name = f"refused-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    run_id = client.create_run(client.create_experiment(name)).info.run_id
    with pytest.raises(MlflowException, match="Invalid benchmark_value"):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id,
                                    tags={"benchmark_value": "x"})
    reader_key = server.keystore.create("ro", owner=owner, scopes="read")[1]
    denied = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                           json={"name": "nope"}, headers=bearer(reader_key), timeout=30)
    assert denied.status_code == 403
    anonymous = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                              json={"name": "nope"}, timeout=30)
    assert anonymous.status_code == 401

    # Each worker writes its own records: wait for each one, not for a count.
    refused = wait_for(server, 1, principal=owner, status="403")
    assert refused[0]["action"] == "POST /api/2.0/mlflow/experiments/create"
    assert denied.headers["X-Request-ID"] == refused[0]["request_id"]
    invalid = wait_for(server, 1, principal=owner, status="400")
    assert invalid[0]["action"] == "POST /api/2.0/mlflow/model-versions/create"
    assert invalid[0]["model_name"] == name
    assert not audit(server, action="experiments/create", status="401")["records"]


def test_a_client_request_id_is_kept_beside_the_servers_own(writer):
    """A client's X-Request-ID never becomes a record's id: an insider could
    otherwise forge one, or collide with another request's record."""
    server, owner, key_id, client = writer
    key = server.keystore.create("ids", owner=owner, scopes="read,write")[1]
    chosen = f"proxy-{uuid.uuid4().hex[:8]}"
    answers = [requests.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                             json={"name": f"ids-{uuid.uuid4().hex[:6]}"},
                             headers={**bearer(key), "X-Request-ID": request_id}, timeout=30)
               for request_id in (chosen, chosen, "not a token!")]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    served = [answer.headers["X-Request-ID"] for answer in answers]
    assert chosen not in served and len(set(served)) == 3
    records = wait_for(server, 3, principal=owner)
    by_id = {record["request_id"]: record for record in records}
    assert set(served) <= set(by_id)
    assert [by_id[request_id]["client_request_id"] for request_id in served] == \
        [chosen, chosen, None]
    assert audit(server, request_id=chosen)["records"] == []


def test_filters_and_pagination(writer):
    server, owner, _, client = writer
    started = int(time.time() * 1000)
    for _ in range(5):
        client.create_experiment(f"paged-{uuid.uuid4().hex[:6]}")
    all_records = wait_for(server, 5, principal=owner, action="experiments/create")
    assert len(all_records) == 5
    pages, token = [], None
    while True:
        params = {"principal": owner, "max_results": 2, **({"page_token": token} if token else {})}
        page = audit(server, **params)
        pages.append(page["records"])
        token = page["next_page_token"]
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r["id"] for p in pages for r in p] == [r["id"] for r in all_records]
    assert len(audit(server, principal=owner, since=str(started))["records"]) == 5
    assert audit(server, principal=owner, until="2000-01-01T00:00:00Z")["records"] == []
    assert audit(server, principal=owner, action="runs/create")["records"] == []


def test_key_management_is_audited_without_the_key(each_server_kind):
    server = each_server_kind
    created = requests.post(f"{server.url}/api/keys", json={"name": "audited-key"},
                            headers=bearer(server.admin_key), timeout=30)
    assert created.status_code == 201
    key_id, plaintext = created.json()["id"], created.json()["key"]
    records = wait_for(server, 1, api_key_id=key_id)
    assert records[0]["action"] == "POST /api/keys" and records[0]["status"] == 201
    assert plaintext not in str(audit(server, api_key_id=key_id))


@pytest.mark.parametrize("params, message", [
    ({"max_results": "0"}, "max_results must be an integer from 1 to 1000"),
    ({"since": "yesterday"}, "since must be epoch milliseconds or an ISO 8601 time"),
    ({"page_token": "???"}, "Invalid page_token"),
    ({"who": "me"}, "Unknown parameter(s): who"),
])
def test_bad_queries_are_400(each_server_kind, params, message):
    answer = requests.get(f"{each_server_kind.url}/api/audit", params=params,
                          headers=bearer(each_server_kind.admin_key), timeout=30)
    assert answer.status_code == 400 and message in answer.json()["detail"]


def test_the_audit_trail_needs_admin(each_server_kind):
    key = each_server_kind.create_key("read,write")
    answer = requests.get(f"{each_server_kind.url}/api/audit", headers=bearer(key), timeout=30)
    assert answer.status_code == 403


def test_poisoned_requests_cost_no_other_record(each_server_kind):
    """Issue 14, item 1: values a database refuses (a lone surrogate in a JSON id,
    a NUL byte in a query parameter) once made a worker's whole batch fail and
    be dropped, an admin's concurrent writes with it."""
    server = each_server_kind
    admin = f"admin-{uuid.uuid4().hex[:6]}"
    admin_key = server.keystore.create("admin", owner=admin, scopes="admin")[1]
    attacker = f"attacker-{uuid.uuid4().hex[:6]}"
    attacker_key = server.keystore.create("w", owner=attacker, scopes="read,write")[1]
    base = f"{server.url}/api/2.0/mlflow"
    poisons = [
        ("runs/log-metric", "", b'{"run_id": "\\ud800", "key": "m", "value": 1, "timestamp": 0}'),
        # (A NUL in the URL itself is refused before authentication, for every route.)
        ("experiments/delete", "", b'{"experiment_id": "\\u0000"}'),
        ("runs/set-tag", "", b'{"run_id": "\\udfff\\u0000", "key": "k", "value": "v"}'),
    ]
    stop = threading.Event()

    def poison():
        with requests.Session() as session:
            while not stop.is_set():
                for route, query, body in poisons:
                    session.post(f"{base}/{route}{query}", data=body, timeout=30,
                                 headers={**bearer(attacker_key),
                                          "Content-Type": "application/json"})

    attacks = [threading.Thread(target=poison) for _ in range(2)]
    for thread in attacks:
        thread.start()
    acknowledged = set()
    try:
        with requests.Session() as session:
            for _ in range(15):
                answer = session.post(f"{base}/experiments/create",
                                      json={"name": f"admin-{uuid.uuid4().hex[:8]}"},
                                      headers=bearer(admin_key), timeout=30)
                assert answer.status_code == 200, answer.text
                acknowledged.add(answer.headers["X-Request-ID"])
    finally:
        stop.set()
        for thread in attacks:
            thread.join()

    recorded = {r["request_id"] for r in wait_for(server, 15, principal=admin)}
    assert recorded == acknowledged
    # The attacker's own records are kept too, with what the database cannot hold replaced.
    theirs = wait_for(server, 3, principal=attacker, max_results=1000)
    assert {r["run_id"] for r in theirs} >= {"\ufffd", "\ufffd\ufffd"}
    assert "\ufffd" in {r["experiment_id"] for r in theirs}
