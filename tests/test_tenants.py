"""Tenants: with MLflow's workspaces on, a key bound to workspace A can neither
read nor write workspace B (nor the default one), a JWT through its
``tenant_id`` claim alike; admin keys bound to all ("*") enter every one."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import requests

from tests.conftest import JWT_SECRET, _start
from tests.test_permissions import API, Caller


@pytest.fixture(scope="module")
def workspaces_server(tmp_path_factory):
    backend = f"sqlite:///{tmp_path_factory.mktemp('tenants') / 'mlflow.db'}"
    running = _start(tmp_path_factory, "tenants-uvicorn", backend, server="uvicorn",
                     extra_env={"MLFLOW_ENABLE_WORKSPACES": "true"})
    yield running
    running.server.stop()


def _in(caller: Caller, workspace: str):
    def call(method, path, **kwargs):
        return caller(method, path, headers={"X-MLFLOW-WORKSPACE": workspace}, **kwargs)
    return call


class HeaderCaller(Caller):
    def __call__(self, method, path, headers=None, **kwargs):
        return requests.request(method, self.url + path, timeout=60,
                                headers={"X-API-Key": self.key, **(headers or {})}, **kwargs)


def test_a_key_bound_to_one_workspace_stays_in_it(workspaces_server):
    tag = uuid.uuid4().hex[:6]
    a, b = f"team-a-{tag}", f"team-b-{tag}"
    admin = HeaderCaller(workspaces_server, workspaces_server.admin_key)
    for name in (a, b):
        response = admin("POST", "/api/3.0/mlflow/workspaces", json={"name": name})
        assert response.status_code == 201, response.text
    key = workspaces_server.create_key("read,write", owner=f"alice-{tag}", workspaces=a)
    alice = HeaderCaller(workspaces_server, key)
    in_a, in_b = _in(alice, a), _in(alice, b)

    created = in_a("POST", f"{API}/experiments/create", json={"name": f"exp-{tag}"})
    assert created.status_code == 200, created.text
    searched = in_a("POST", f"{API}/experiments/search", json={"max_results": 10})
    assert searched.status_code == 200, searched.text
    for response in (in_b("POST", f"{API}/experiments/search", json={"max_results": 10}),
                     in_b("POST", f"{API}/experiments/create", json={"name": f"x-{tag}"}),
                     alice("POST", f"{API}/experiments/search", json={"max_results": 10})):  # default workspace
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert "not bound to workspace" in response.json()["message"]

    token = jwt.encode({"sub": f"bob-{tag}", "scope": "read write", "tenant_id": b,
                        "aud": "hokusai-tests", "exp": int(time.time()) + 300},
                       JWT_SECRET, algorithm="HS256")
    bob_headers = {"Authorization": f"Bearer {token}"}

    def as_bob(workspace):
        return requests.post(workspaces_server.url + f"{API}/experiments/search", json={"max_results": 10},
                             headers={**bob_headers, "X-MLFLOW-WORKSPACE": workspace},
                             timeout=60).status_code

    assert (as_bob(b), as_bob(a)) == (200, 403)
    # An admin key bound to all ("*" or, unbound, by its scope) enters every workspace.
    assert _in(admin, b)("POST", f"{API}/experiments/search", json={"max_results": 10}).status_code == 200
