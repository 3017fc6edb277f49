"""The shared REST layer on a small Flask app of its own: both paths, 422s in
FastAPI's shape, ``{"detail"}`` errors, and the OpenAPI document."""

import flask
import pydantic
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.rest import BodyModel, QueryModel, Raw, RestBlueprint, openapi


class ItemPath(QueryModel):
    name: str
    version: int = pydantic.Field(ge=1)


class Paging(QueryModel):
    max_results: int = pydantic.Field(10, ge=1, le=100)


class Update(BodyModel):
    description: str | None = None
    tags: dict[str, str] = {}  # noqa: RUF012 - pydantic copies a field's default per instance


class Item(pydantic.BaseModel):
    name: str
    version: int
    description: str | None = None


@pytest.fixture
def client():
    blueprint = RestBlueprint("demo", __name__, tag="demo")

    @blueprint.operation("GET", "/things/special", response=Item)
    def special():
        return {"name": "special", "version": 1}

    @blueprint.operation("PATCH", "/things/<name>/<version>", path_model=ItemPath, body=Update,
                         response=Item, errors=(404,))
    def update(name: str, version: int, body: Update):
        """Update a thing."""
        if name == "missing":
            raise NotFound(f"Model not found: {name}:{version}")
        if name == "mlflow":
            raise MlflowException("nope", error_code=RESOURCE_DOES_NOT_EXIST)
        return Item(name=name, version=version, description=body.description)

    @blueprint.operation("GET", "/things/<name>/<version>", path_model=ItemPath, query=Paging,
                         response=Item)
    def get(name: str, version: int, query: Paging):
        return {"name": name, "version": version, "description": str(query.max_results)}

    @blueprint.operation("GET", "/files", response=Raw("application/zip", "An archive"))
    def files():
        return flask.Response(b"PK", mimetype="application/zip")

    app = flask.Flask(__name__)
    app.register_blueprint(blueprint)
    app.extensions["doc"] = lambda: openapi.build(app)
    return app.test_client()


def test_every_operation_is_served_under_api_and_at_the_root(client):
    for prefix in ("/api", ""):
        response = client.patch(f"{prefix}/things/m/3", json={"description": "d"})
        assert response.status_code == 200
        assert response.get_json() == {"name": "m", "version": 3, "description": "d"}
        assert client.get(f"{prefix}/things/m/3?max_results=7").get_json()["description"] == "7"
        # The static segment wins over the variable.
        assert client.get(f"{prefix}/things/special").get_json()["name"] == "special"


def test_validation_errors_are_422_in_fastapis_shape(client):
    response = client.patch("/api/things/m/0", json={"description": "d", "colour": "red"})
    assert response.status_code == 422
    assert response.get_json()["detail"] == [
        {"loc": ["path", "version"], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"}]
    assert response.get_json()["error"]["code"] == "INVALID_PARAMETER"
    response = client.patch("/api/things/m/1", json={"description": "d", "colour": "red"})
    assert response.get_json()["detail"] == [
        {"loc": ["body", "colour"], "msg": "Extra inputs are not permitted",
         "type": "extra_forbidden"}]
    response = client.patch("/api/things/m/1", data="{nope", content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["type"] == "json_invalid"
    response = client.get("/things/m/1?max_results=1000")
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["query", "max_results"]


def test_errors_carry_every_form(client):
    """The reference's ``detail`` and ``error``, MLflow's ``error_code`` and ``message``."""
    response = client.patch("/things/missing/2", json={})
    message = "Model not found: missing:2"
    assert (response.status_code, response.get_json()) == \
        (404, {"detail": message, "error": {"code": "RESOURCE_NOT_FOUND", "message": message},
               "error_code": "RESOURCE_DOES_NOT_EXIST", "message": message})
    response = client.patch("/things/mlflow/2", json={})
    assert (response.status_code, response.get_json()) == \
        (404, {"detail": "nope", "error": {"code": "RESOURCE_NOT_FOUND", "message": "nope"},
               "error_code": "RESOURCE_DOES_NOT_EXIST", "message": "nope"})


def test_openapi_lists_both_paths_with_schemas(client):
    document = client.application.extensions["doc"]()
    paths = document["paths"]
    assert set(paths) == {"/api/things/special", "/things/special", "/api/things/{name}/{version}",
                          "/things/{name}/{version}", "/api/files", "/files"}
    patch = paths["/things/{name}/{version}"]["patch"]
    assert patch["summary"] == "Update a thing."
    assert patch["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/Update"}
    assert patch["responses"]["200"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/Item"}
    assert {"404", "422", "401", "403"} <= set(patch["responses"])
    assert [p["name"] for p in patch["parameters"]] == ["name", "version"]
    assert patch["parameters"][1]["schema"]["type"] == "integer"
    get = paths["/api/things/{name}/{version}"]["get"]
    assert [(p["name"], p["in"]) for p in get["parameters"]][-1] == ("max_results", "query")
    assert paths["/files"]["get"]["responses"]["200"]["content"] == {
        "application/zip": {"schema": {"type": "string", "format": "binary"}}}
    schemas = document["components"]["schemas"]
    assert schemas["Update"]["additionalProperties"] is False
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
