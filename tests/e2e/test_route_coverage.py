"""Deny by default: every route the running app serves refuses a request without
credentials, except an explicit allow-list kept here, in the test, so that
widening the gate's allow-list fails this test until someone means it."""

import concurrent.futures
import re

import pytest
import requests

from tests.support.route_inventory import inventory

# (method, concrete path) pairs that may answer without credentials.
PUBLIC = {
    ("GET", "/"), ("GET", "/static-files/x1"), ("GET", "/build/x1"),
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/live"), ("GET", "/version"),
    ("GET", "/metrics"),
    ("GET", "/health/mlflow"), ("GET", "/api/health/mlflow"), ("GET", "/mlflow/health/mlflow"),
    ("GET", "/api/health/mlflow/detailed"), ("GET", "/mlflow/health/mlflow/detailed"),
    ("GET", "/api/health/mlflow/connectivity"),
    ("GET", "/login"), ("GET", "/logout"),  # the login page; logging out needs a session
    # The API reference's base URL is /api; its documentation is public (issue 20).
    ("GET", "/api/health"), ("GET", "/api/ready"), ("GET", "/api/live"), ("GET", "/api/version"),
    ("GET", "/api/metrics"), ("GET", "/api/openapi.json"), ("GET", "/docs"),
    ("GET", "/api/v1/dspy/health"),  # DSPy executions' counts, no secrets (issue 19)
}

_PARAM = re.compile(r"<[^>]+>|\{[^}]+\}")


_INVENTORIES: dict[str, dict] = {}


def inventory_of(server) -> dict:
    """What tests.support.route_inventory prints ("served" routes and
    "unclassified" ones) for this server; built once per server, for both tests."""
    if server.url not in _INVENTORIES:
        _INVENTORIES[server.url] = inventory(server)
    return _INVENTORIES[server.url]


def served_routes(server) -> list[tuple[str, str]]:
    """(method, concrete path) for every route the server serves."""
    pairs = set()
    for methods, template in inventory_of(server)["served"]:
        path = _PARAM.sub("x1", template)
        pairs.update((m, path) for m in methods if m not in ("HEAD", "OPTIONS"))
    return sorted(pairs)


def test_every_served_route_requires_credentials(each_server_kind):
    routes = served_routes(each_server_kind)
    assert len(routes) > 300  # MLflow's REST API is all there
    if each_server_kind.server.server == "uvicorn":
        # FastAPI-native routes were enumerated too, not only Flask's URL map.
        assert ("PUT", "/api/2.0/mlflow-artifacts/artifacts/x1") in routes
        assert ("POST", "/v1/traces") in routes
        assert ("GET", "/ajax-api/3.0/jobs/x1") in routes
    # Some 600 requests, four at a time (one after the other: 33 s against 7 s on a
    # busy 2-core machine); the same requests, each answer checked as before.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(
            lambda route: requests.request(route[0], each_server_kind.url + route[1], timeout=30),
            routes))
    opened = []
    for (method, path), response in zip(routes, responses, strict=True):
        if (method, path) in PUBLIC:
            assert response.status_code != 401, (method, path)
        elif response.status_code != 401:
            opened.append((method, path, response.status_code))
    assert opened == []
    served_public = {pair for pair in routes if pair in PUBLIC}
    assert served_public == PUBLIC  # the allow-list names only routes that exist


def test_the_route_table_classifies_every_served_route(each_server_kind):
    # A route a newer MLflow adds lands here until plugins/auth/resources.py judges it.
    assert inventory_of(each_server_kind)["unclassified"] == []


def test_an_unclassified_route_is_refused_even_to_admins():
    import flask

    from mlflow_hokusai.errors import RouteNotClassified
    from mlflow_hokusai.plugins.auth.annotate import annotate
    from mlflow_hokusai.plugins.auth.gate import Gate, Principal
    from mlflow_hokusai.routes import RouteTable

    app = flask.Flask("future")
    app.add_url_rule("/api/2.0/mlflow/experiments/get", "_get_experiment", lambda: "")
    app.add_url_rule("/api/2.0/mlflow/brand-new/<thing>", "_brand_new", lambda thing: "",
                     methods=["POST"])
    table = RouteTable(app, annotate).build()
    assert [r.template for r in table.unclassified() if r.method == "POST"] == \
        ["/api/2.0/mlflow/brand-new/<thing>"]
    resolved = table.resolve("POST", "/api/2.0/mlflow/brand-new/x")
    assert resolved.params == {"thing": "x"}
    admin = Principal("root", "api_key", frozenset({"admin"}))
    with pytest.raises(RouteNotClassified):
        Gate.authorize(resolved.route, admin, None)
    known = table.resolve("GET", "/api/2.0/mlflow/experiments/get").route
    assert known.classified and known.access.kind == "experiment" and known.scope == "read"
    Gate.authorize(known, admin, None)


@pytest.mark.parametrize("method,path", [
    ("POST", "/health"), ("DELETE", "/version"), ("GET", "/health/"), ("GET", "/healthz"),
    ("GET", "/HEALTH"), ("GET", "/health/../api/keys"), ("GET", "/static-files/../api/keys"),
    ("GET", "/static-files/%2e%2e/api/keys"), ("GET", "/static-files/"), ("GET", "/build//x"),
    ("GET", "/api/2.0/mlflow/a-route-from-a-future-mlflow"),
    ("POST", "/api/2.0/mlflow/a-route-from-a-future-mlflow"),
    ("OPTIONS", "/api/2.0/mlflow/experiments/search"),  # not a CORS preflight
    ("GET", "/graphql"), ("POST", "/graphql"), ("PUT", "/api/keys"),
    ("GET", "/health/status"), ("POST", "/health/mlflow/reset"), ("GET", "/health/mlflow/"),
    ("GET", "/api/health/mlflow/connectivity/x"), ("POST", "/metrics"),
])
def test_near_misses_of_the_allow_list_are_refused(each_server_kind, method, path):
    # Send the path as written, without client-side normalisation of "..".
    session = requests.Session()
    request = requests.Request(method, each_server_kind.url + path).prepare()
    request.url = each_server_kind.url + path
    assert session.send(request, timeout=30).status_code == 401


@pytest.mark.parametrize("method,path", [
    ("POST", "//api/keys"), ("GET", "//api/keys"), ("GET", "///api/keys"),
    ("POST", "//api/2.0/mlflow/experiments/create"),
])
def test_leading_slashes_do_not_skip_scope_rules(each_server_kind, method, path):
    # Werkzeug routes "//api/keys" as "/api/keys": the gate must judge it so.
    reader = each_server_kind.create_key("read")
    request = requests.Request(method, each_server_kind.url + path, json={"name": "x",
                               "scopes": ["admin"]}, headers={"X-API-Key": reader}).prepare()
    request.url = each_server_kind.url + path
    response = requests.Session().send(request, timeout=30)
    assert response.status_code == 403, response.text
    writer = each_server_kind.create_key("read,write")
    request.headers["X-API-Key"] = writer
    response = requests.Session().send(request, timeout=30)
    assert path.endswith("experiments/create") or response.status_code == 403, response.text


def test_encoded_slash_prefix_is_judged_as_routed(uvicorn_sqlite):
    # uvicorn decodes "/%2Fapi/keys" to "//api/keys".
    response = requests.get(uvicorn_sqlite.url + "/%2Fapi/keys",
                            headers={"X-API-Key": uvicorn_sqlite.create_key("read,write")},
                            timeout=30)
    assert response.status_code in (403, 404), response.text


def test_cors_preflight_is_public(each_server_kind):
    response = requests.options(each_server_kind.url + "/api/2.0/mlflow/experiments/search",
                                headers={"Origin": "http://localhost:3000",
                                         "Access-Control-Request-Method": "POST"}, timeout=30)
    assert response.status_code != 401
