"""Bad input gets a 4xx JSON answer that says what is wrong, never a 500, and
no answer carries an SQL statement, a database host or a server path (issue 14,
item 12): Hokusai's own routes, and MLflow's routes behind the gate."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.callers import Http
from tests.support.hokusai_servers import SERVER_KINDS

HUGE = str(2 ** 64)
LEAKS = ("SELECT", "INSERT", "UPDATE ", "[SQL", "psycopg", "sqlite3", "sqlalchemy", "127.0.0.1",
         "5432", "Traceback", "/tmp/", "site-packages")


def refused(response, status=None):
    """A 4xx JSON answer (of ``status``, when given) that leaks nothing."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    body = json.loads(response.text)  # strict: Infinity or NaN would not be JSON
    # The request id is random hex: it may spell "5432" by chance.
    text = response.text.replace(str(body.get("request_id", "")), "")
    for leak in LEAKS:
        assert leak not in text, (leak, response.text[:500])
    # Every form of the one error body (the references' and MLflow's).
    assert set(body) >= {"detail", "error", "error_code", "message", "request_id"}, body
    assert body["error"]["message"] == body["message"], body
    return body


class Client(Http):
    def __init__(self, server, scopes):
        super().__init__(server.url, {"X-API-Key": server.create_key(scopes)})
        self.server = server


@pytest.fixture(scope="module", params=SERVER_KINDS)
def setup(request):
    """A server, an admin client, and a model with one version (a run's model)."""
    server = request.getfixturevalue(request.param)
    admin = Client(server, "admin")
    name = f"err-{uuid.uuid4().hex[:8]}"
    experiment = admin("POST", "/api/2.0/mlflow/experiments/create",
                       json={"name": name}).json()["experiment_id"]
    run_id = admin("POST", "/api/2.0/mlflow/runs/create",
                   json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
    assert admin("POST", "/api/2.0/mlflow/registered-models/create",
                 json={"name": name}).status_code == 200
    created = admin("POST", "/api/2.0/mlflow/model-versions/create",
                    json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id})
    assert created.status_code == 200, created.text
    return {"server": server, "admin": admin, "name": name, "run_id": run_id,
            "postgres": request.param != "uvicorn_sqlite"}


@pytest.mark.parametrize("prefix", ["", "/api"])
@pytest.mark.parametrize("path", [
    "/models/{name}/{huge}", "/models/{name}/{huge}/lineage", "/models/{name}/{huge}/metrics",
    "/models/{name}/{huge}/predictions", "/models/{name}/{huge}/download",
    "/models/{name}/-1", "/models/{name}/{big32}/lineage"])
def test_version_numbers_out_of_range(setup, prefix, path):
    admin = setup["admin"]
    url = prefix + path.format(name=setup["name"], huge=HUGE, big32=2 ** 31)
    assert refused(admin("GET", url), 422)["detail"][0]["loc"] == ["path", "version"]


def test_version_numbers_out_of_range_in_bodies(setup):
    admin, name = setup["admin"], setup["name"]
    for method, path, body in (
            ("POST", f"/models/{name}/{HUGE}/predictions", {"predictions": [{}]}),
            ("POST", f"/models/{name}/{HUGE}/transition", {"stage": "Staging"}),
            ("POST", "/models/evaluate", {"model_name": name, "model_version": int(HUGE),
                                          "dataset_path": "x.csv", "target": "y"}),
            ("POST", "/models/batch", {"operations": [
                {"action": "delete", "model": f"{name}:{HUGE}"}]})):
        refused(admin(method, path, json=body), 422)


def test_owner_of_a_huge_version(setup):
    refused(setup["admin"]("GET", f"/api/owners/model-versions/x/{HUGE}"))


def test_page_token_that_is_not_base64(setup):
    body = refused(setup["admin"]("GET", "/models/?page_token=%C3%A9"))
    assert "page_token" in json.dumps(body)
    refused(setup["admin"]("GET", "/models/?page_token=!!!"))


def test_transition_to_none_archiving_the_others(setup):
    admin, name = setup["admin"], setup["name"]
    body = refused(admin("POST", f"/models/{name}/1/transition",
                         json={"stage": "None", "archive_existing": True}), 422)
    assert "archive_existing applies only" in body["detail"][0]["msg"]


def test_key_name_with_a_lone_surrogate(setup):
    answer = setup["admin"]("POST", "/api/keys", data='{"name": "\\ud800"}',
                            headers={"Content-Type": "application/json"})
    assert "must not contain" in refused(answer, 400)["detail"]


def test_audit_times_out_of_range(setup):
    for query in (f"since={HUGE}", f"until={'9' * 400}", "since=99999-01-01"):
        refused(setup["admin"]("GET", f"/api/audit?{query}"), 400)


@pytest.mark.parametrize("path", [
    "/api/owners/runs/a%00b", "/api/owners/experiments/a%00b",
    "/api/owners/registered-models/a%00b", "/api/owners/model-versions/a%00b/1",
    "/api/audit?principal=a%00b", "/models/by-token/a%00b", "/models/a%00b/1",
    "/models/a%00b/lineage", "/api/2.0/mlflow/registered-models/get?name=a%00b",
    "/api/2.0/mlflow/experiments/get-by-name?experiment_name=a%00b"])
def test_nul_characters_in_urls(setup, path):
    assert "NUL" in refused(setup["admin"]("GET", path), 400)["detail"]


def test_latency_too_large_to_average(setup):
    admin, name = setup["admin"], setup["name"]
    refused(admin("POST", f"/models/{name}/1/predictions",
                  json={"predictions": [{"latency_ms": 1.7e308}, {"latency_ms": 1.7e308}]}), 422)
    metrics = admin("GET", f"/models/{name}/1/metrics")
    assert metrics.status_code == 200
    json.loads(metrics.text)


def test_download_of_a_source_the_server_does_not_read(setup):
    """A version made with MLflow's own API whose source is on a scheme the
    server has no business reading."""
    admin, name = setup["admin"], setup["name"]
    created = admin("POST", "/api/2.0/mlflow/model-versions/create", json={
        "name": name, "source": "dbfs:/databricks/model"})
    assert created.status_code == 200, created.text
    version = created.json()["model_version"]["version"]
    assert "does not read model files from dbfs:" in refused(
        admin("GET", f"/models/{name}/{version}/download"), 400)["detail"]


def test_download_of_a_run_without_the_model(setup):
    """Version 1 came from MLflow's API with a runs:/ source whose run never
    logged a model: resolved through the server's own stores, it has no files."""
    admin, name = setup["admin"], setup["name"]
    assert "No files" in refused(admin("GET", f"/models/{name}/1/download"), 404)["detail"]


MLFLOW_JSON_ROUTES = [
    ("POST", "/api/2.0/mlflow/experiments/create"),
    ("POST", "/api/2.0/mlflow/runs/create"),
    ("POST", "/api/2.0/mlflow/runs/search"),
    ("POST", "/api/2.0/mlflow/runs/log-batch"),
    ("POST", "/api/2.0/mlflow/registered-models/create"),
    ("PATCH", "/api/2.0/mlflow/registered-models/update"),
    ("DELETE", "/api/2.0/mlflow/registered-models/delete"),
    ("POST", "/api/2.0/mlflow/model-versions/search"),
    ("GET", "/api/2.0/mlflow/experiments/search"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search"),
    ("POST", "/api/3.0/mlflow/traces/search"),
    ("POST", "/graphql"),
]


@pytest.mark.parametrize("method, path", MLFLOW_JSON_ROUTES)
@pytest.mark.parametrize("body", ["[]", "1", '"x"', '"[1]"', "true"])
def test_mlflow_routes_refuse_bodies_that_are_no_object(setup, method, path, body):
    answer = setup["admin"](method, path, data=body, headers={"Content-Type": "application/json"})
    assert "JSON object" in refused(answer, 400)["message"]


def test_no_mlflow_route_fails_on_a_body_that_is_no_object(uvicorn_sqlite):
    """Every route of MLflow's Flask app (this MLflow's, so a route a future
    MLflow adds is covered too), sent a JSON array: none answers 5xx or HTML."""
    from mlflow.server import app as mlflow_app

    admin = Client(uvicorn_sqlite, "admin")
    checked = []
    for rule in mlflow_app.url_map.iter_rules():
        if "<" in rule.rule or rule.rule == "/" or "mlflow-artifacts" in rule.rule:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = admin(method, rule.rule, data="[1]",
                           headers={"Content-Type": "application/json"})
            checked.append((method, rule.rule))
            assert answer.status_code < 500, (method, rule.rule, answer.text[:300])
            assert answer.headers["Content-Type"].startswith("application/json"), \
                (method, rule.rule, answer.text[:300])
    assert len(checked) > 200


def _mistyped(tag: str) -> dict:
    """Fields of MLflow's requests, each of a value its handler cannot use."""
    return {"name": f"mistyped-{tag}", "version": "x", "trace_id": "t", "run_id": "zz",
            "prompt_versions": [{"name": "p", "version": "abc"}], "experiment_id": "abc",
            "max_results": -1, "page_token": "zzz",
            "events": [{"entity": "model_version", "action": "made"}], "features": 5}


def test_no_mlflow_route_fails_on_missing_or_mistyped_fields(uvicorn_sqlite):
    """Every route of MLflow's Flask app, path parameters included, sent no
    fields and mistyped ones (as the query string for GET): none answers 500,
    and every answer is JSON, MLflow's own text and HTML errors included (a
    disabled route's 503 stays a 503)."""
    import re

    from mlflow.server import app as mlflow_app

    admin = Client(uvicorn_sqlite, "admin")
    mistyped = _mistyped(uuid.uuid4().hex[:8])
    checked = 0
    for rule in mlflow_app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        if not re.search(r"/(?:ajax-)?api/|/graphql$", path) or "mlflow-artifacts" in path:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for fields in ({}, mistyped):
                if method == "GET":
                    answer = admin(method, path, params={k: str(v) for k, v in fields.items()})
                else:
                    answer = admin(method, path, json=fields)
                checked += 1
                assert answer.status_code < 500 or answer.status_code in (501, 503), \
                    (method, path, fields, answer.text[:300])
                assert answer.headers["Content-Type"].startswith("application/json"), \
                    (method, path, answer.status_code, answer.text[:300])
                json.loads(answer.text)
    assert checked > 600


def test_mlflow_routes_still_take_objects_and_double_encoded_ones(setup):
    admin = setup["admin"]
    name = f"dbl-{uuid.uuid4().hex[:8]}"
    assert admin("POST", "/api/2.0/mlflow/experiments/create",
                 data=json.dumps(json.dumps({"name": name})),
                 headers={"Content-Type": "application/json"}).status_code == 200
    assert admin("GET", "/api/2.0/mlflow/experiments/search?max_results=1").status_code == 200
    answer = admin("POST", "/graphql", json={"query": "{ mlflowSearchRuns(input: {}) { runs "
                                                      "{ info { runId } } } }"})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("method, data", [("POST", ""), ("GET", ""), ("POST", "{}"),
                                          ("POST", '{"query": 1}')])
def test_graphql_without_a_query(setup, method, data):
    answer = setup["admin"](method, "/graphql", data=data,
                            headers={"Content-Type": "application/json"})
    assert "query" in refused(answer, 400)["message"]
