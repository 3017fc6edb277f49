"""The OpenAPI 3.1 document of every ``RestBlueprint`` operation, built from the
same pydantic models that validate the requests, so it cannot drift from them."""

from __future__ import annotations

import re
from typing import Any, Literal

import pydantic
from pydantic.json_schema import models_json_schema

import mlflow_hokusai
from mlflow_hokusai.rest.blueprint import Operation, Raw, rest_blueprints

_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_REF = "#/components/schemas/{model}"


class ErrorInfo(pydantic.BaseModel):
    code: str = pydantic.Field(description="The API reference's code: INVALID_PARAMETER, "
                                           "UNAUTHORIZED, RESOURCE_NOT_FOUND, ...")
    message: str


class ErrorDetail(pydantic.BaseModel):
    detail: str
    error: ErrorInfo
    error_code: str = pydantic.Field(description="MLflow's error code")
    message: str
    request_id: str | None = None


class ValidationIssue(pydantic.BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(ErrorDetail):
    # A 422's detail is its list of issues; pydantic lets a subclass retype a field.
    detail: list[ValidationIssue]  # type: ignore[assignment]


def openapi_path(rule: str) -> str:
    """``/models/<name>/<int:version>`` -> ``/models/{name}/{version}``."""
    return _VARIABLE.sub(r"{\1}", rule)


def _is_model(value) -> bool:
    return isinstance(value, type) and issubclass(value, pydantic.BaseModel)


def _parameters(model, where: str, names: list[str] | None = None) -> list[dict]:
    schema = model.model_json_schema(ref_template=_REF) if model is not None else {}
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    if names is not None:  # path variables: every one, typed when the model knows it
        return [{"name": n, "in": "path", "required": True,
                 "schema": properties.get(n, {"type": "string"})} for n in names]
    return [{"name": n, "in": where, "required": n in required, "schema": s}
            for n, s in properties.items()]


def _json(ref: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _operation(op: Operation, rule: str, tag: str, refs) -> dict:
    variables = _VARIABLE.findall(op.path)
    # operationId must be unique: the root-path alias gets its own.
    operation_id = op.endpoint if rule == op.rules[0] else f"{op.endpoint}_root"
    doc: dict = {"summary": op.summary, "operationId": operation_id, "tags": [tag],
                 "security": [{"ApiKey": []}, {"Bearer": []}],
                 "parameters": _parameters(op.path_model, "path", variables) +
                 (_parameters(op.query, "query") if op.query else [])}
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(op.body, "validation")]}}}
    if isinstance(op.response, Raw):
        doc["responses"] = {str(op.response.status): {
            "description": op.response.description,
            "content": {op.response.media_type: {"schema": {"type": "string",
                                                            "format": "binary"}}}}}
    elif op.response is None:  # an answer without a body (204, or a redirect)
        doc["responses"] = {str(op.status): {"description": "OK"}}
    else:
        doc["responses"] = {str(op.status): _json(refs[(op.response, "serialization")], "OK")}
    error_ref = refs[(ErrorDetail, "serialization")]
    for status in sorted({401, 403, 429, *op.errors}):
        doc["responses"][str(status)] = _json(error_ref, "Error")
    if op.path_model or op.query or op.body:
        doc["responses"]["422"] = _json(refs[(ValidationErrorBody, "serialization")],
                                        "Validation error")
    return doc


def build(flask_app) -> dict:
    blueprints = rest_blueprints(flask_app)
    wanted: set[tuple[Any, Literal["validation", "serialization"]]] = {
        (ErrorDetail, "serialization"), (ValidationErrorBody, "serialization")}
    for blueprint in blueprints:
        for op in blueprint.operations:
            if op.body is not None:
                wanted.add((op.body, "validation"))
            if _is_model(op.response):
                wanted.add((op.response, "serialization"))
    ordered = sorted(wanted, key=lambda pair: (pair[0].__module__, pair[0].__qualname__, pair[1]))
    refs, definitions = models_json_schema(ordered, ref_template=_REF)
    paths: dict[str, dict] = {}
    for blueprint in blueprints:
        for op in blueprint.operations:
            for rule in op.rules:
                paths.setdefault(openapi_path(rule), {})[op.method.lower()] = \
                    _operation(op, rule, blueprint.tag, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hokusai API", "version": mlflow_hokusai.__version__,
                 "description": "Every operation is served under /api and at the root path."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
