"""``/api/owners/...``: who created an experiment, run, registered model or model
version (``read`` scope, by the permission table's default for GET, and READ on
the resource: a hidden one's owner is as hidden as the resource)."""

from __future__ import annotations

import flask

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.auth.tenants import current_workspace
from mlflow_hokusai.plugins.store import reader
from mlflow_hokusai.plugins.store.access import read
from mlflow_hokusai.values import version_number

blueprint = flask.Blueprint("hokusai_owners", __name__, url_prefix="/api/owners")
# (template below /api, resource kind, path parameter naming it), for the route table.
RESOURCES = (("/owners/experiments/<experiment_id>", "experiment", "experiment_id"),
             ("/owners/runs/<run_id>", "run", "run_id"),
             ("/owners/registered-models/<path:name>", "registered_model", "name"),
             ("/owners/model-versions/<path:name>/<version>", "registered_model", "name"))


def _answer(resource_type: str, resource_id: str, row) -> dict:
    if row is None or (row["owner"] is None and row["owner_key_id"] is None):
        raise NotFound(f"No owner recorded for {resource_type} {resource_id}")
    return {"resource_type": resource_type, "resource_id": resource_id, "owner": row["owner"],
            "key_id": row["owner_key_id"], "created_at": row["created_at"]}


@blueprint.get("/experiments/<experiment_id>")
def experiment_owner(experiment_id: str):
    row = read(lambda session: reader.owner(session, "experiment", experiment_id),
               registry=False)
    return _answer("experiment", experiment_id, row)


@blueprint.get("/runs/<run_id>")
def run_owner(run_id: str):
    row = read(lambda session: reader.owner(session, "run", run_id), registry=False)
    return _answer("run", run_id, row)


@blueprint.get("/registered-models/<path:name>")
def model_owner(name: str):
    row = read(lambda session: reader.model_owner(session, current_workspace(), name))
    return _answer("registered_model", name, row)


@blueprint.get("/model-versions/<path:name>/<version>")
def version_owner(name: str, version: str):
    number = version_number(version)
    row = read(lambda session: reader.version_owner(session, current_workspace(), name, number))
    return _answer("model_version", f"{name}/{version}", row)
