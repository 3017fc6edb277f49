"""Per-resource permissions, end to end on real servers (uvicorn + SQLite,
gunicorn + PostgreSQL): two write keys of two principals over every write route
family of MLflow's REST API and Hokusai's own; grants and revocations; the
unmodified MLflow client's view of a refusal."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

from tests.support.callers import API, Caller, grant, is_refused
from tests.support.servers import BIN


def _world(owner: Caller, tag: str) -> dict:
    """What the owner creates: an experiment with a run and a logged model, a
    registered model with a version."""
    experiment = owner.ok("POST", f"{API}/experiments/create",
                          json={"name": f"perm-{tag}"})["experiment_id"]
    run = owner.ok("POST", f"{API}/runs/create", json={"experiment_id": experiment})["run"]
    model = f"perm-model-{tag}"
    owner.ok("POST", f"{API}/registered-models/create", json={"name": model})
    source = run["info"]["artifact_uri"] + "/model"
    owner.ok("POST", f"{API}/model-versions/create",
             json={"name": model, "source": source, "run_id": run["info"]["run_id"]})
    logged = owner.ok("POST", f"{API}/logged-models",
                      json={"experiment_id": experiment, "name": "lm"})["model"]
    return {"experiment": experiment, "run": run["info"]["run_id"], "model": model,
            "logged": logged["info"]["model_id"], "tag": tag, "source": source,
            "artifact": f"{experiment}/{run['info']['run_id']}/artifacts"}


def _edit_operations(w: dict) -> list[tuple[str, str, dict]]:
    """(method, path, request kwargs) writes that need EDIT, one per route family."""
    e, r, m = w["experiment"], w["run"], w["model"]
    now = int(time.time() * 1000)
    return [
        ("POST", f"{API}/experiments/set-experiment-tag",
         {"json": {"experiment_id": e, "key": "k", "value": "v"}}),
        ("POST", f"{API}/experiments/delete-experiment-tag",
         {"json": {"experiment_id": e, "key": "k"}}),
        ("POST", f"{API}/runs/create", {"json": {"experiment_id": e}}),
        ("POST", f"{API}/runs/update", {"json": {"run_id": r, "status": "RUNNING"}}),
        ("POST", f"{API}/runs/log-metric",
         {"json": {"run_id": r, "key": "loss", "value": 0.5, "timestamp": now, "step": 0}}),
        ("POST", f"{API}/runs/log-parameter",
         {"json": {"run_id": r, "key": f"p{uuid.uuid4().hex[:6]}", "value": "1"}}),
        ("POST", f"{API}/runs/log-batch",
         {"json": {"run_id": r, "metrics": [{"key": "acc", "value": 1, "timestamp": now,
                                              "step": 1}]}}),
        ("POST", f"{API}/runs/set-tag", {"json": {"run_id": r, "key": "t", "value": "v"}}),
        ("POST", f"{API}/runs/delete-tag", {"json": {"run_id": r, "key": "t"}}),
        ("POST", f"{API}/runs/log-inputs", {"json": {"run_id": r, "datasets": []}}),
        ("PATCH", f"{API}/logged-models/{w['logged']}/tags",
         {"json": {"tags": [{"key": "t", "value": "v"}]}}),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{w['artifact']}/notes.txt",
         {"data": b"hello"}),
        ("POST", f"{API}/registered-models/set-tag",
         {"json": {"name": m, "key": "k", "value": "v"}}),
        ("DELETE", f"{API}/registered-models/delete-tag", {"json": {"name": m, "key": "k"}}),
        ("PATCH", f"{API}/registered-models/update", {"json": {"name": m, "description": "d"}}),
        ("PATCH", f"{API}/model-versions/update",
         {"json": {"name": m, "version": "1", "description": "d"}}),
        ("POST", f"{API}/model-versions/set-tag",
         {"json": {"name": m, "version": "1", "key": "k", "value": "v"}}),
        ("POST", f"{API}/model-versions/transition-stage",
         {"json": {"name": m, "version": "1", "stage": "Staging",
                   "archive_existing_versions": False}}),
        ("DELETE", f"{API}/model-versions/delete-tag",
         {"json": {"name": m, "version": "1", "key": "k"}}),
        ("POST", f"{API}/registered-models/alias",
         {"json": {"name": m, "alias": "champion", "version": "1"}}),
        ("DELETE", f"{API}/registered-models/alias", {"json": {"name": m, "alias": "champion"}}),
        ("POST", f"{API}/model-versions/create",
         {"json": {"name": m, "source": w["source"], "run_id": r}}),
        # Hokusai's model API
        ("PATCH", f"/api/models/{m}/1", {"json": {"description": "via hokusai"}}),
        ("POST", f"/api/models/{m}/1/transition", {"json": {"stage": "Staging"}}),
        ("POST", f"/api/models/{m}/1/predictions", {"json": {"predictions": [{"latency_ms": 1}]}}),
        ("POST", "/api/models/batch",
         {"json": {"operations": [{"model": f"{m}:1", "action": "set_tag", "key": "b",
                                   "value": "1"}]}}),
    ]


def _manage_operations(w: dict, owner: bool = False) -> list[tuple[str, str, dict]]:
    """Deletes and renames (MANAGE), in an order the owner can run them (the
    owner deletes the model under its new name)."""
    e, r, m = w["experiment"], w["run"], w["model"]
    return [
        ("DELETE", f"/api/2.0/mlflow-artifacts/artifacts/{w['artifact']}/notes.txt", {}),
        ("DELETE", f"{API}/logged-models/{w['logged']}", {}),
        ("POST", f"{API}/runs/delete", {"json": {"run_id": r}}),
        ("POST", f"{API}/runs/restore", {"json": {"run_id": r}}),
        ("POST", f"{API}/experiments/update",
         {"json": {"experiment_id": e, "new_name": f"perm-renamed-{w['tag']}"}}),
        ("DELETE", f"/api/models/{m}/2", {}),
        ("DELETE", f"{API}/model-versions/delete", {"json": {"name": m, "version": "1"}}),
        ("POST", f"{API}/registered-models/rename",
         {"json": {"name": m, "new_name": f"{m}-renamed"}}),
        ("DELETE", f"{API}/registered-models/delete",
         {"json": {"name": f"{m}-renamed" if owner else m}}),
        ("POST", f"{API}/experiments/delete", {"json": {"experiment_id": e}}),
    ]


def test_owner_writes_other_is_refused_until_granted(team):
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    edits, manages = _edit_operations(world), _manage_operations(world)
    for method, path, kwargs in edits + manages:
        response = other(method, path, **kwargs)
        assert is_refused(response), (method, path, response.status_code, response.text)
    denial = other("POST", f"{API}/runs/log-metric", **edits[4][2]).json()
    assert denial["resource_type"] == "experiment" and denial["resource_id"] == \
        world["experiment"] and denial["required_permission"] == "EDIT"

    bob = f"bob-{tag}"
    grant(owner, bob, "experiment", world["experiment"], "EDIT")
    grant(owner, bob, "registered_model", world["model"], "EDIT")
    time.sleep(1.0)  # other workers read grants again after at most a second
    for method, path, kwargs in edits:
        response = other(method, path, **kwargs)
        assert response.status_code in (200, 201), (method, path, response.text)
    for method, path, kwargs in manages:
        assert is_refused(other(method, path, **kwargs)), (method, path)
    # An EDIT holder cannot pass permissions on: that takes MANAGE.
    assert is_refused(other("POST", "/api/3.0/mlflow/users/permissions/grant",
                            json={"username": "carol", "resource_type": "experiment",
                                  "resource_id": world["experiment"], "permission": "READ"}))

    for resource_type, resource_id in (("experiment", world["experiment"]),
                                       ("registered_model", world["model"])):
        owner.ok("POST", "/api/3.0/mlflow/users/permissions/revoke",
                 json={"username": bob, "resource_type": resource_type,
                       "resource_id": resource_id})
    time.sleep(1.0)  # the bound on how long any worker trusts a grant it read
    for _ in range(4):  # several requests: they reach different workers
        for method, path, kwargs in edits[:3] + edits[12:15]:
            assert is_refused(other(method, path, **kwargs)), (method, path)

    for method, path, kwargs in _manage_operations(world, owner=True):
        response = owner(method, path, **kwargs)
        assert response.status_code == 200, (method, path, response.text)


def test_admin_passes_and_read_scope_stays_a_ceiling(team):
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    admin.ok("POST", f"{API}/runs/set-tag", json={"run_id": world["run"], "key": "a", "value": "1"})
    reader = Caller(server, server.create_key("read", owner=f"alice-{tag}"))
    response = reader("POST", f"{API}/runs/set-tag",
                      json={"run_id": world["run"], "key": "a", "value": "2"})
    assert response.status_code == 403 and response.json()["required_scope"] == "write"
    # Reading needs READ, which everyone has by default.
    assert other("GET", f"{API}/runs/get", params={"run_id": world["run"]}).status_code == 200


def test_camel_case_and_query_ids_cannot_dodge_the_check(team):
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    # Protobuf's parser reads camelCase aliases; the check must look there too.
    assert is_refused(other("POST", f"{API}/runs/set-tag",
                            json={"runId": world["run"], "key": "x", "value": "y"}))
    # MLflow reads a POST's body, never its query: an id in the query decides nothing.
    response = other("POST", f"{API}/runs/set-tag", params={"run_id": "nope"},
                     json={"run_id": world["run"], "key": "x", "value": "y"})
    assert is_refused(response)
    # Without an id there is nothing to judge: refused, never let through.
    assert other("POST", f"{API}/runs/set-tag", json={"key": "x"}).status_code == 400


def test_two_ids_or_another_spelling_cannot_dodge_the_check(team):
    """Found by an insider review: the check and MLflow's view must judge and
    serve the same resource."""
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    mine = other.ok("POST", f"{API}/experiments/create", json={"name": f"mine-{tag}"})
    my_run = other.ok("POST", f"{API}/runs/create",
                      json={"experiment_id": mine["experiment_id"]})["run"]["info"]["run_id"]
    # upload-artifact reads run_uuid; naming one's own run as run_id beside it
    # once overwrote the other principal's file.
    response = other("POST", "/ajax-api/2.0/mlflow/upload-artifact",
                     params={"run_id": my_run, "run_uuid": world["run"], "path": "x.txt"},
                     data=b"overwritten", headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 400 and "more than one run" in response.text
    # GET handlers read only snake_case query names; a camelCase alias beside them
    # once decided the check.
    response = other("GET", f"{API}/metrics/get-history",
                     params={"runId": my_run, "run_uuid": world["run"], "metric_key": "m"})
    assert response.status_code == 400
    # MLflow reads experiment ids as integers: "01" is experiment 1.
    grant(owner, f"bob-{tag}", "experiment", world["experiment"], "NO_PERMISSIONS")
    time.sleep(1.0)  # every worker reads grants again within a second
    for spelling in (world["experiment"], "0" + world["experiment"], " " + world["experiment"]):
        response = other("GET", f"{API}/experiments/get", params={"experiment_id": spelling})
        assert response.status_code == 404, (spelling, response.text)


def test_owner_records_of_a_hidden_resource_are_hidden(team):
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    bob = f"bob-{tag}"
    grant(owner, bob, "experiment", world["experiment"], "NO_PERMISSIONS")
    grant(owner, bob, "registered_model", world["model"], "NO_PERMISSIONS")
    paths = [f"/api/owners/experiments/{world['experiment']}", f"/api/owners/runs/{world['run']}",
             f"/api/owners/registered-models/{world['model']}",
             f"/api/owners/model-versions/{world['model']}/1"]
    for path in paths:
        assert owner("GET", path).status_code == 200, path
    time.sleep(1.0)  # every worker reads grants again within a second
    for path in paths:
        assert other("GET", path).status_code == 404, path


def test_a_model_not_created_yet_grants_nothing_once_it_exists(team):
    """A check of a name nobody holds yet (MANAGE: the creator will own it) must
    not be remembered past the model's creation."""
    server, owner, other, admin, tag = team
    name = f"later-{tag}"
    body = {"username": f"bob-{tag}", "resource_type": "registered_model",
            "resource_id": name, "permission": "MANAGE"}
    assert other("POST", "/api/3.0/mlflow/users/permissions/grant", json=body).status_code == 404
    tag_it = {"json": {"name": name, "key": "k", "value": "v"}}
    with requests.Session() as session:  # keep-alive: answers come fast, from each worker
        session.headers["X-API-Key"] = other.key
        for _ in range(6):  # asked while nobody holds the name: MLflow says it does not exist
            response = session.post(f"{server.url}{API}/registered-models/set-tag", **tag_it)
            assert response.status_code == 404
        owner.ok("POST", f"{API}/registered-models/create", json={"name": name})
        for _ in range(6):  # right after (well within a cache's lifetime): refused
            response = session.post(f"{server.url}{API}/registered-models/set-tag", **tag_it)
            assert is_refused(response), response.text
    for _ in range(6):
        assert is_refused(other("POST", "/api/3.0/mlflow/users/permissions/grant", json=body))


def test_grants_need_an_existing_resource_and_valid_fields(team):
    server, owner, other, admin, tag = team
    for body, status in [
        ({"username": "x", "resource_type": "registered_model",
          "resource_id": f"future-{tag}", "permission": "MANAGE"}, 404),
        ({"username": "x", "resource_type": "dataset", "resource_id": "1",
          "permission": "READ"}, 400),
        ({"username": "x", "resource_type": "experiment", "resource_id": "0",
          "permission": "OWNER"}, 400),
        ({"username": "", "resource_type": "experiment", "resource_id": "0",
          "permission": "READ"}, 400),
    ]:
        response = owner("POST", "/api/3.0/mlflow/users/permissions/grant", json=body)
        assert response.status_code == status, (body, response.text)


def test_mlflow_clients_work_for_the_owner_and_see_permission_denied(team, monkeypatch):
    server, owner, other, admin, tag = team
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    client = MlflowClient(server.url)
    experiment = client.create_experiment(f"client-{tag}")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "loss", 0.1)
    client.create_registered_model(f"client-model-{tag}")

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", other.key)
    with pytest.raises(MlflowException) as refused:
        client.log_metric(run.info.run_id, "loss", 0.2)
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "EDIT" in refused.value.message and experiment in refused.value.message
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.delete_registered_model(f"client-model-{tag}")

    # MLflow's own AuthServiceClient speaks the grant API unchanged.
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    auth = AuthServiceClient(server.url)
    auth.grant_user_permission(f"bob-{tag}", "experiment", experiment, "EDIT")
    time.sleep(1.0)  # every worker reads grants again within a second
    assert auth.get_user_permission(f"bob-{tag}", "experiment", experiment).permission == "EDIT"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", other.key)
    client.log_metric(run.info.run_id, "loss", 0.3)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    auth.revoke_user_permission(f"bob-{tag}", "experiment", experiment)
    time.sleep(1.0)
    assert auth.get_user_permission(f"bob-{tag}", "experiment", experiment).permission == "READ"


def test_grants_and_denials_are_audited(team):
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    other("POST", f"{API}/runs/set-tag", json={"run_id": world["run"], "key": "x", "value": "y"})
    grant(owner, f"bob-{tag}", "experiment", world["experiment"], "READ")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        actions = set()
        for who in (f"alice-{tag}", f"bob-{tag}"):
            records = admin.ok("GET", "/api/audit", params={"principal": who})["records"]
            actions |= {(r["principal"], r["action"], r["status"], r["run_id"] or
                         r["experiment_id"]) for r in records}
        if {(f"bob-{tag}", "POST /api/2.0/mlflow/runs/set-tag", 403, world["run"]),
                (f"alice-{tag}", "POST /api/3.0/mlflow/users/permissions/grant", 200,
                 world["experiment"])} <= actions:
            return
        time.sleep(0.3)
    pytest.fail(f"audit records missing: {actions}")


def test_a_deleted_models_grants_do_not_pass_to_the_next_of_its_name(team):
    server, owner, other, admin, tag = team
    name = f"reborn-{tag}"
    owner.ok("POST", f"{API}/registered-models/create", json={"name": name})
    grant(owner, f"bob-{tag}", "registered_model", name, "MANAGE")
    owner.ok("DELETE", f"{API}/registered-models/delete", json={"name": name})
    carol = Caller(server, server.create_key("read,write", owner=f"carol-{tag}"))
    carol.ok("POST", f"{API}/registered-models/create", json={"name": name})
    time.sleep(1.0)
    assert is_refused(other("DELETE", f"{API}/registered-models/delete", json={"name": name}))


def test_grants_from_the_cli_and_the_app_client(team, monkeypatch):
    server, owner, other, admin, tag = team
    world = _world(owner, tag)
    bob = f"bob-{tag}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "MLFLOW_TRACKING_TOKEN": owner.key}

    def cli(*args):
        return subprocess.run([str(BIN / "hokusai"), "permissions", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    done = cli("grant", "--user", bob, "--model", world["model"], "--permission", "EDIT")
    assert done.returncode == 0, done.stderr
    listed = cli("list", "--model", world["model"], "--json")
    assert [(r["username"], r["permission"]) for r in json.loads(listed.stdout)] == [(bob, "EDIT")]
    env["MLFLOW_TRACKING_TOKEN"] = other.key  # an EDIT holder may not grant
    refused = cli("grant", "--user", bob, "--model", world["model"], "--permission", "MANAGE")
    assert refused.returncode != 0 and "403" in refused.stderr

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    client = mlflow.server.get_app_client("hokusai", server.url)
    client.grant_permission(bob, "experiment", world["experiment"], "MANAGE")
    assert client.get_permission(bob, "experiment", world["experiment"]) == \
        {"allowed": True, "permission": "MANAGE"}
    on_experiment = client.list_permissions(resource_type="experiment",
                                            resource_id=world["experiment"])
    assert [(r["username"], r["permission"], r["granted_by"]) for r in on_experiment] == \
        [(bob, "MANAGE", f"alice-{tag}")]
    with pytest.raises(Exception, match="403"):  # someone else's grants: admins only
        client.list_permissions(username=bob)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", other.key)
    assert {r["resource_type"] for r in client.list_permissions()} == \
        {"experiment", "registered_model"}  # one's own
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    client.revoke_permission(bob, "experiment", world["experiment"])
    assert cli("revoke", "--user", bob, "--model", world["model"]).returncode != 0  # bob's key
    env["MLFLOW_TRACKING_TOKEN"] = owner.key
    assert cli("revoke", "--user", bob, "--model", world["model"]).returncode == 0
    assert client.list_permissions(resource_type="registered_model",
                                   resource_id=world["model"]) == []


def test_server_wide_operator_routes_need_the_admin_scope(uvicorn_sqlite):
    """A write key may not subscribe a webhook to every principal's model
    events, read the webhooks, rewire the AI gateway, call its endpoints (they
    spend the provider secrets admins stored) or hard-delete MLflow's demo
    data; an admin key passes the gate."""
    writer = Caller(uvicorn_sqlite, uvicorn_sqlite.create_key("read,write"))
    admin = Caller(uvicorn_sqlite, uvicorn_sqlite.admin_key)
    # Events spelled as MLflow's entities, not its protocol's names: refused
    # before MLflow reads them (its handler answered 500), so that no webhook is
    # made on this shared server.
    hook = {"name": "all-models", "url": "https://hooks.example.com/x",
            "events": [{"entity": "model_version", "action": "created"}]}
    for method, path, body in [("POST", "/api/2.0/mlflow/webhooks", hook),
                               ("GET", "/api/2.0/mlflow/webhooks", None),
                               ("POST", "/api/3.0/mlflow/gateway/endpoints/update",
                                {"endpoint_id": "e-1", "name": "mine"}),
                               ("POST", "/gateway/no-such-endpoint/mlflow/invocations",
                                {"messages": [{"role": "user", "content": "hi"}]}),
                               ("POST", "/gateway/mlflow/v1/chat/completions",
                                {"model": "no-such-endpoint",
                                 "messages": [{"role": "user", "content": "hi"}]}),
                               ("POST", "/mlflow/gateway/openai/v1/chat/completions",
                                {"model": "no-such-endpoint",
                                 "messages": [{"role": "user", "content": "hi"}]}),
                               ("POST", "/ajax-api/2.0/mlflow/gateway-proxy",
                                {"gateway_path": "gateway/no-such-endpoint/invocations"}),
                               ("POST", "/ajax-api/3.0/mlflow/demo/delete", {})]:
        refused = writer(method, path, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert "lacks the 'admin' scope" in refused.json()["message"], refused.text
        assert admin(method, path, json=body).status_code != 403, path
    # Listing the gateway's endpoints is a read.
    assert writer("GET", "/gateway/mlflow/v1/models").status_code == 200
    malformed = admin("POST", "/api/2.0/mlflow/webhooks", json=hook)
    assert malformed.status_code == 400, malformed.text
    assert "events.0.entity must be one of REGISTERED_MODEL, MODEL_VERSION" in malformed.text
