"""Registry views: list, read, update, delete, transition, register, production."""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry import ModelVersionTag

from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT
from mlflow_hokusai.plugins.models import registry, schemas, sources
from mlflow_hokusai.plugins.models.blueprint import blueprint, hokusai

_VERSION: dict[str, Any] = {"path_model": schemas.VersionPath, "errors": (404,)}


@blueprint.operation("GET", "/models/", query=schemas.ListQuery, response=schemas.ModelList)
def list_models(query: schemas.ListQuery):
    """The latest version of each registered model, paginated."""
    return registry.list_models(query.name, query.max_results, query.page_token)


@blueprint.operation("GET", "/models/production", response=schemas.ProductionList)
def production_models():
    """Every version in the Production stage or carrying the production alias."""
    return {"models": registry.production_versions()}


@blueprint.operation("GET", "/models/<name>/<version>", response=schemas.ModelVersionOut,
                     **_VERSION)
def get_version(name: str, version: int):
    """One model version."""
    return registry.version_out(registry.get_version(name, version))


@blueprint.operation("PATCH", "/models/<name>/<version>", body=schemas.UpdateBody,
                     response=schemas.ModelVersionOut, **_VERSION)
def update_version(name: str, version: int, body: schemas.UpdateBody):
    """Set the description and tags (a null tag value deletes the tag)."""
    return registry.version_out(registry.update(name, version, body.description, body.tags))


@blueprint.operation("DELETE", "/models/<name>/<version>", response=schemas.Message, **_VERSION)
def delete_version(name: str, version: int):
    """Delete a model version (and its recorded predictions)."""
    registry.delete(name, version)
    hokusai().predictions.delete(name, version)
    return {"message": f"Model {name}:{version} deleted successfully"}


@blueprint.operation("POST", "/models/<name>/<version>/transition", body=schemas.TransitionBody,
                     response=schemas.ModelVersionOut, **_VERSION)
def transition(name: str, version: int, body: schemas.TransitionBody):
    """Move a version to a stage; the alias of the same name follows it."""
    return registry.version_out(
        registry.transition(name, version, body.stage, body.archive_existing))


def _tag_value(value) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@blueprint.operation("POST", "/models/register", body=schemas.RegisterBody,
                     response=schemas.Registered, status=201, errors=(400, 404))
def register(body: schemas.RegisterBody):
    """Register a model URI as a new version (the registered model is created
    if missing); ``metadata`` becomes tags. Without ``model_name`` the name is
    derived (sources.NAME_RULE)."""
    name = body.model_name or sources.derive_name(body.model_data, body.model_type,
                                                  body.metadata)
    require("registered_model", name, EDIT)  # creating one needs only `write`
    source = sources.resolve(body.model_data)
    store = registry.registry_store()
    registry.ensure_model(store, name)
    tags = {key: _tag_value(value) for key, value in body.metadata.items()}
    if body.model_type:
        tags["model_type"] = body.model_type
    mv = store.create_model_version(
        name, source.source, run_id=source.run_id, model_id=source.model_id,
        tags=[ModelVersionTag(k, v) for k, v in tags.items()])
    if source.model_id:  # as MLflow's handler does: the logged model lists its versions
        registry.tracking_store().set_model_versions_tags(
            name=mv.name, version=mv.version, model_id=source.model_id)
    return {"model_id": f"{mv.name}:{mv.version}", "model_name": mv.name,
            "version": int(mv.version), "logged_model_id": source.model_id,
            "registration_timestamp": registry.when(mv.creation_timestamp)}
