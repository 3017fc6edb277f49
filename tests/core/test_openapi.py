"""/api/openapi.json documents every route the REST blueprints register, with
its request and response schemas, and is behind the read scope by default."""

import pytest
import requests

from mlflow_hokusai.rest.openapi import openapi_path
from tests.support.route_inventory import inventory


@pytest.fixture(scope="module")
def document(uvicorn_sqlite):
    response = requests.get(uvicorn_sqlite.url + "/api/openapi.json", timeout=30,
                            headers={"X-API-Key": uvicorn_sqlite.create_key("read")})
    assert response.status_code == 200
    return response.json()


def _resolve(document, schema):
    ref = schema.get("$ref", "")
    assert ref.startswith("#/components/schemas/"), schema
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_public_by_default_as_the_reference_says(uvicorn_sqlite):
    # "All API endpoints (except health checks and documentation) require authentication."
    anonymous = requests.get(uvicorn_sqlite.url + "/api/openapi.json", timeout=30)
    assert anonymous.status_code == 200 and anonymous.json()["openapi"] == "3.1.0"


def test_every_rest_route_is_documented_with_schemas(uvicorn_sqlite, document):
    routes = inventory(uvicorn_sqlite, "--rest")
    assert len(routes) >= 28  # the 14 models operations, under /api and at the root
    for methods, rule in routes:
        path = openapi_path(rule)
        assert path in document["paths"], rule
        for method in methods:
            operation = document["paths"][path][method.lower()]
            success = [s for s in operation["responses"] if s.startswith("2")]
            assert len(success) == 1, (rule, method)
            content = operation["responses"][success[0]]["content"]
            if "application/json" in content:
                assert _resolve(document, content["application/json"]["schema"])["properties"]
            if method in ("POST", "PATCH", "PUT"):
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert _resolve(document, body)["additionalProperties"] is False
            for name in (p for p in rule.split("/") if p.startswith("<")):
                assert name.strip("<>").split(":")[-1] in \
                    [p["name"] for p in operation["parameters"] if p["in"] == "path"]
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    served = {(openapi_path(rule), m.lower()) for methods, rule in routes for m in methods}
    assert documented == served


def test_register_operation_in_detail(document):
    operation = document["paths"]["/api/models/register"]["post"]
    body = _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {"model_data", "model_name", "model_type", "metadata"}
    assert body["required"] == ["model_data"]  # model_name is derived when missing
    answer = _resolve(document, operation["responses"]["201"]["content"]["application/json"]
                      ["schema"])
    assert set(answer["properties"]) == {"model_id", "model_name", "version",
                                         "logged_model_id", "registration_timestamp"}
    assert {"401", "403", "422", "429"} <= set(operation["responses"])
    download = document["paths"]["/models/{name}/{version}/download"]["get"]
    assert list(download["responses"]["200"]["content"]) == ["application/zip"]
    listing = document["paths"]["/api/models/"]["get"]
    assert [p["name"] for p in listing["parameters"]] == ["name", "max_results", "page_token"]
