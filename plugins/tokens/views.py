"""The routes (each under /api and at the root path); GET needs ``read``, POST
``write`` (the permission table's default)."""

from __future__ import annotations

from mlflow_hokusai.plugins.tokens import schemas, service
from mlflow_hokusai.rest import RestBlueprint

blueprint = RestBlueprint("hokusai_tokens", __name__, tag="tokens")


@blueprint.operation("POST", "/models/register-tokenized", body=schemas.RegisterTokenized,
                     response=schemas.Registered, status=201, errors=(400, 404, 409))
def register_tokenized(body: schemas.RegisterTokenized):
    """Register a model version bound to a token, with its benchmark baseline."""
    return service.register(body)


@blueprint.operation("GET", "/models/by-token/<token_id>", path_model=schemas.TokenPath,
                     query=schemas.Page, response=schemas.ByToken, errors=(404,))
def model_by_token(token_id: str, query: schemas.Page):
    """The model a token is bound to, with its versions (paginated)."""
    return service.by_token(token_id, query)


@blueprint.operation("GET", "/models/<model_id>/lineage", path_model=schemas.ModelPath,
                     query=schemas.Page, response=schemas.ModelLineage, errors=(404,))
def model_lineage(model_id: str, query: schemas.Page):
    """The improvement history of a registered model, oldest version first (paginated)."""
    return service.model_lineage(model_id, query)


@blueprint.operation("GET", "/models/<model_name>/<version>/lineage",
                     path_model=schemas.VersionPath, response=schemas.VersionLineage,
                     errors=(404,))
def version_lineage(model_name: str, version: int):
    """A version's parents, its source run's datasets and experiment."""
    return as_reference(service.version_lineage(model_name, version))


def as_reference(lineage: dict) -> dict:
    """The API reference's strings ("name:version", dataset names, experiment
    ids), with the detailed objects kept under their own keys."""
    name = lineage["model"].rsplit(":", 1)[0]
    return {"model": lineage["model"],
            "parents": [f"{name}:{p['version']}" for p in lineage["parents"]],
            "training_data": [d["name"] for d in lineage["training_data"]],
            "experiments": [e["experiment_id"] for e in lineage["experiments"]],
            "parent_versions": lineage["parents"], "datasets": lineage["training_data"],
            "experiment_runs": lineage["experiments"]}


@blueprint.operation("GET", "/models/contributors/<address>/impact",
                     path_model=schemas.AddressPath, response=schemas.Impact, errors=(400,))
def contributor_impact(address: str):
    """What an address contributed, over every model."""
    return service.contributor_impact(address)
