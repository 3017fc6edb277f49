"""Tenants: with MLflow's workspaces on, a key bound to workspace A can neither
read nor write workspace B (nor the default one), a JWT through its
``tenant_id`` claim alike; admin keys bound to all ("*") enter every one."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import requests

from tests.support.callers import API, Caller
from tests.support.hokusai_servers import start_server
from tests.support.jwt_keys import JWT_SECRET


@pytest.fixture(scope="module", params=["uvicorn-sqlite", "gunicorn-postgresql"])
def workspaces_server(request, tmp_path_factory, make_postgres_database):
    server, database = request.param.split("-")
    backend = f"sqlite:///{tmp_path_factory.mktemp('tenants') / 'mlflow.db'}" \
        if database == "sqlite" else make_postgres_database()
    running = start_server(tmp_path_factory, f"tenants-{request.param}", backend, server=server,
                           extra_env={"MLFLOW_ENABLE_WORKSPACES": "true"})
    yield running
    running.server.stop()


def _in(caller: Caller, workspace: str):
    def call(method, path, **kwargs):
        return caller(method, path, headers={"X-MLFLOW-WORKSPACE": workspace}, **kwargs)
    return call


def test_a_key_bound_to_one_workspace_stays_in_it(workspaces_server):
    tag = uuid.uuid4().hex[:6]
    a, b = f"team-a-{tag}", f"team-b-{tag}"
    admin = Caller(workspaces_server, workspaces_server.admin_key)
    for name in (a, b):
        response = admin("POST", "/api/3.0/mlflow/workspaces", json={"name": name})
        assert response.status_code == 201, response.text
    key = workspaces_server.create_key("read,write", owner=f"alice-{tag}", workspaces=a)
    alice = Caller(workspaces_server, key)
    in_a, in_b = _in(alice, a), _in(alice, b)

    created = in_a("POST", f"{API}/experiments/create", json={"name": f"exp-{tag}"})
    assert created.status_code == 200, created.text
    searched = in_a("POST", f"{API}/experiments/search", json={"max_results": 10})
    assert searched.status_code == 200, searched.text
    for response in (in_b("POST", f"{API}/experiments/search", json={"max_results": 10}),
                     in_b("POST", f"{API}/experiments/create", json={"name": f"x-{tag}"}),
                     # the default workspace
                     alice("POST", f"{API}/experiments/search", json={"max_results": 10})):
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert "not bound to workspace" in response.json()["message"]

    token = jwt.encode({"sub": f"bob-{tag}", "scope": "read write", "tenant_id": b,
                        "aud": "hokusai-tests", "exp": int(time.time()) + 300},
                       JWT_SECRET, algorithm="HS256")
    bob_headers = {"Authorization": f"Bearer {token}"}

    def as_bob(workspace):
        return requests.post(workspaces_server.url + f"{API}/experiments/search",
                             json={"max_results": 10},
                             headers={**bob_headers, "X-MLFLOW-WORKSPACE": workspace},
                             timeout=60).status_code

    assert (as_bob(b), as_bob(a)) == (200, 403)
    # An admin key bound to all ("*" or, unbound, by its scope) enters every workspace.
    searched = _in(admin, b)("POST", f"{API}/experiments/search", json={"max_results": 10})
    assert searched.status_code == 200


def _workspaces(server, tag: str) -> tuple[str, str]:
    admin = Caller(server, server.admin_key)
    names = (f"team-a-{tag}", f"team-b-{tag}")
    for name in names:
        response = admin("POST", "/api/3.0/mlflow/workspaces", json={"name": name})
        assert response.status_code == 201, response.text
    return names


def _principal(server, name: str, workspaces: str) -> Caller:
    return Caller(server, server.create_key("read,write", owner=name,
                                                  workspaces=workspaces))


def _set_tag(call, model: str):
    return call("POST", f"{API}/registered-models/set-tag",
                json={"name": model, "key": "k", "value": "v"})


def test_a_key_bound_to_a_cannot_touch_models_in_b(workspaces_server):
    tag = uuid.uuid4().hex[:6]
    a, b = _workspaces(workspaces_server, tag)
    model = f"model-{tag}"
    carol = _principal(workspaces_server, f"carol-{tag}", b)
    assert _in(carol, b)("POST", f"{API}/registered-models/create",
                         json={"name": model}).status_code == 200
    alice = _in(_principal(workspaces_server, f"alice-{tag}", a), b)
    for response in (alice("GET", f"{API}/registered-models/get", params={"name": model}),
                     _set_tag(alice, model),
                     alice("DELETE", f"{API}/registered-models/delete", json={"name": model})):
        assert response.status_code == 403, response.text
        assert "not bound to workspace" in response.json()["message"]


def _name_taken(response) -> bool:
    return (response.status_code == 400
            and response.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
            and "is taken in another workspace" in response.json()["message"])


def test_a_model_name_belongs_to_one_workspace(workspaces_server):
    """Hokusai's index, tokens, deployments and monitoring are keyed by model name:
    a second workspace's model of a name would share the first one's (its first
    version failed to index: a 500). So the name is refused there, at creation
    and by a rename, and is free again once the first model is deleted."""
    tag = uuid.uuid4().hex[:6]
    a, b = _workspaces(workspaces_server, tag)
    model, both = f"model-{tag}", f"{a},{b}"
    alice = _principal(workspaces_server, f"alice-{tag}", both)
    dave = _principal(workspaces_server, f"dave-{tag}", both)
    # Versions from a source only an admin may name (version sources are judged).
    admin = Caller(workspaces_server, workspaces_server.admin_key)
    create, new_version = f"{API}/registered-models/create", f"{API}/model-versions/create"
    assert _in(alice, a)("POST", create, json={"name": model}).status_code == 200
    assert _in(admin, a)("POST", new_version, json={"name": model, "source": "s3://bucket/m"}
                         ).status_code == 200
    for caller in (alice, dave):
        assert _name_taken(_in(caller, b)("POST", create, json={"name": model}))
    other = f"other-{tag}"
    assert _in(dave, b)("POST", create, json={"name": other}).status_code == 200
    assert _name_taken(_in(dave, b)("POST", f"{API}/registered-models/rename",
                                    json={"name": other, "new_name": model}))
    # Hokusai's own registration, which creates a missing model, refuses it alike.
    assert _in(admin, b)("POST", new_version, json={"name": other, "source": "s3://bucket/m"}
                         ).status_code == 200
    assert _name_taken(_in(admin, b)("POST", "/api/models/register", json={
        "model_data": f"models:/{other}/1", "model_name": model}))
    # Nothing of a's model went to Dave, and b's kept its name.
    refused = _set_tag(_in(dave, a), model)
    assert refused.status_code == 403 and refused.json()["required_permission"] == "EDIT"
    owner = _in(alice, a)("GET", f"/api/owners/registered-models/{model}")
    assert owner.json()["owner"] == f"alice-{tag}", owner.text
    assert _in(dave, b)("GET", f"{API}/registered-models/get",
                        params={"name": other}).status_code == 200

    # A grant made in a counts for a's model.
    granted = _in(alice, a)("POST", "/api/3.0/mlflow/users/permissions/grant",
                            json={"username": f"dave-{tag}", "resource_type": "registered_model",
                                  "resource_id": model, "permission": "EDIT"})
    assert granted.status_code == 200, granted.text
    time.sleep(1.0)  # other workers read grants again after at most a second
    assert _set_tag(_in(dave, a), model).status_code == 200

    # Deleted in a, the name is b's to take, with versions from 1 and Dave its owner.
    assert _in(alice, a)("DELETE", f"{API}/registered-models/delete",
                         json={"name": model}).status_code == 200
    assert _in(dave, b)("POST", create, json={"name": model}).status_code == 200
    version = _in(admin, b)("POST", new_version, json={"name": model, "source": "s3://bucket/m"})
    assert version.status_code == 200 and version.json()["model_version"]["version"] == "1"
    owner = _in(dave, b)("GET", f"/api/owners/registered-models/{model}")
    assert owner.json()["owner"] == f"dave-{tag}", owner.text
