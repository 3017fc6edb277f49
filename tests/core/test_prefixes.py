"""MLflow under /api/mlflow and /mlflow: the same routes, behind the same gate,
judged as routed (the prefix must never open a way around a scope rule)."""

import uuid

import pytest
import requests

from mlflow_hokusai import prefixes
from tests.support.flows import full_tracking_and_registry_flow
from tests.support.mlflow_client import mlflow_client


@pytest.mark.parametrize("path,expected", [
    ("/api/mlflow/api/2.0/mlflow/runs/get", "/api/2.0/mlflow/runs/get"),
    ("/mlflow/ajax-api/2.0/mlflow/runs/get", "/ajax-api/2.0/mlflow/runs/get"),
    ("/api/mlflow", "/"), ("/mlflow", "/"), ("/mlflow/", "/"),
    ("/api/mlflow//api/keys", "/api/keys"), ("/mlflow///api/keys", "/api/keys"),
    ("/mlflow/mlflow/api/keys", "/mlflow/api/keys"),  # once only
    ("/mlflowx/api/keys", "/mlflowx/api/keys"), ("/api/mlflowx", "/api/mlflowx"),
    ("/api/2.0/mlflow/runs/get", "/api/2.0/mlflow/runs/get"),
    ("/api/mlflow-artifacts/x", "/api/mlflow-artifacts/x"),
])
def test_strip(path, expected):
    assert prefixes.strip(path) == expected


def test_the_request_itself_is_rewritten():
    scope = {"path": "/root/api/mlflow//api/keys", "root_path": "/root", "raw_path": b"x"}
    prefixes.unprefix_asgi(scope)
    assert scope["path"] == "/root/api/keys" and "raw_path" not in scope
    environ = {"PATH_INFO": "/mlflow/api/2.0/mlflow/experiments/get"}
    prefixes.unprefix_wsgi(environ)
    assert environ["PATH_INFO"] == "/api/2.0/mlflow/experiments/get"
    untouched = {"path": "//api/keys", "root_path": ""}
    prefixes.unprefix_asgi(untouched)
    assert untouched["path"] == "//api/keys"  # no prefix: left as the server gave it


def test_routes_served_under_a_prefix_are_kept(each_server_kind):
    # The health plugin serves /mlflow/health/mlflow/detailed; there is no
    # /health/mlflow/detailed to strip it to.
    response = requests.get(each_server_kind.url + "/mlflow/health/mlflow/detailed", timeout=30)
    assert response.status_code == 200 and "overall_health" in response.json()


def _send(method, url, **kwargs):
    # The path goes out as written (no client-side normalisation).
    request = requests.Request(method, url, **kwargs).prepare()
    request.url = url
    return requests.Session().send(request, timeout=30)


@pytest.mark.parametrize("prefix", ["/api/mlflow", "/mlflow"])
def test_prefixed_routes_behave_as_unprefixed(each_server_kind, prefix):
    server = each_server_kind
    reader = {"X-API-Key": server.create_key("read")}
    path = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    plain = requests.get(server.url + path, headers=reader, timeout=30)
    prefixed = requests.get(server.url + prefix + path, headers=reader, timeout=30)
    assert (prefixed.status_code, prefixed.json()) == (200, plain.json())
    anonymous = requests.get(server.url + prefix + path, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"] == "API key required"
    # The UI's ajax-api family too.
    ajax = requests.get(server.url + prefix + path.replace("/api/", "/ajax-api/", 1),
                        headers=reader, timeout=30)
    assert ajax.json() == plain.json()


@pytest.mark.parametrize("path", [
    "/api/mlflow/api/keys", "/mlflow/api/keys", "/api/mlflow//api/keys", "//mlflow//api/keys",
    "/mlflow/%2Fapi/keys",
])
def test_prefixes_do_not_skip_scope_rules(each_server_kind, path):
    server = each_server_kind
    writer = {"X-API-Key": server.create_key("read,write")}
    for method in ("GET", "POST"):
        response = _send(method, server.url + path, json={"name": "x", "scopes": ["admin"]},
                         headers=writer)
        # %2F: uvicorn decodes it to "//api/keys" (admin, 403); Werkzeug under
        # gunicorn keeps "/%2Fapi/keys", a path nothing serves (404).
        assert response.status_code in ((403, 404) if "%2F" in path else (403,)), response.text
    admin = {"X-API-Key": server.admin_key}
    if "%2F" not in path:
        assert _send("GET", server.url + path, headers=admin).status_code == 200


def test_prefix_is_stripped_once_and_only_at_a_segment(each_server_kind):
    server = each_server_kind
    reader = {"X-API-Key": server.create_key("read")}
    for path in ("/mlflow/mlflow/api/2.0/mlflow/experiments/search",
                 "/mlflowx/api/2.0/mlflow/experiments/search"):
        assert requests.get(server.url + path, headers=reader, timeout=30).status_code == 404
        assert requests.get(server.url + path, timeout=30).status_code == 401


def test_artifact_proxy_under_a_prefix(each_server_kind):
    server = each_server_kind
    reader = {"X-API-Key": server.create_key("read")}
    writer = {"X-API-Key": server.create_key("read,write")}
    # Under the writer's own experiment: artifacts are judged by their experiment.
    experiment = requests.post(server.url + "/api/mlflow/api/2.0/mlflow/experiments/create",
                               json={"name": f"prefix-{uuid.uuid4().hex[:8]}"}, headers=writer,
                               timeout=30).json()["experiment_id"]
    target = f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/prefix/a.txt"
    url = server.url + "/api/mlflow" + target
    assert requests.put(url, data=b"hello", headers=reader, timeout=30).status_code == 403
    assert requests.put(url, data=b"hello", headers=writer, timeout=30).status_code == 200
    assert requests.get(server.url + "/mlflow" + target, headers=reader, timeout=30).content == \
        b"hello"
    assert requests.get(server.url + target, headers=reader, timeout=30).content == b"hello"


def test_route_limits_count_prefixed_routes_alike(each_server_kind):
    # The registration route group (20/minute) is tighter than the key's tier.
    server = each_server_kind
    writer = {"X-API-Key": server.create_key("read,write")}
    for prefix in ("", "/api/mlflow", "/mlflow"):
        response = requests.post(
            server.url + prefix + "/api/2.0/mlflow/registered-models/create",
            json={"name": f"limits-{uuid.uuid4().hex[:8]}"}, headers=writer, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == "20"


@pytest.fixture
def prefixed_tracking(each_server_kind):
    with mlflow_client(each_server_kind.url + "/api/mlflow",
                       each_server_kind.create_key("read,write")) as client:
        yield client


def test_unmodified_client_at_api_mlflow_does_a_full_run(prefixed_tracking, tmp_path):
    # Metrics, params, artifacts up and down, register, alias, load the model.
    full_tracking_and_registry_flow(prefixed_tracking, tmp_path)
