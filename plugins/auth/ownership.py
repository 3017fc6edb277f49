"""Which experiment or registered model a request's resource belongs to, and who
owns it: children inherit (a run, its logged models and artifacts follow their
experiment; a version, its tags and aliases follow its registered model).

Owners are what the stores record (plugins/store/owners.py): ``hokusai_owners``
for experiments, the registry index's rows for registered models. Read through
the stores' own sessions; the parent of a run or logged model never changes,
so it is cached for good, owners for at most the cache TTL (a model deleted
and created again by someone else gets a new owner).
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from mlflow_hokusai.db.schema import owners as O
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.errors import BadRequest, Unsupported
from mlflow_hokusai.plugins.auth.ttlcache import TtlCache
from mlflow_hokusai.plugins.store.access import read

EXPERIMENT, MODEL = "experiment", "registered_model"
# A registered model the index has no row for does not exist (the triggers keep
# a row for every model): nothing there to protect yet.
MISSING = object()


def _experiment_of(kind: str, ident: str):
    from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlLoggedModel, SqlRun

    column, key = {"run": (SqlRun.experiment_id, SqlRun.run_uuid),
                   "logged_model": (SqlLoggedModel.experiment_id, SqlLoggedModel.model_id),
                   "experiment_name": (SqlExperiment.experiment_id, SqlExperiment.name)}[kind]
    value = read(lambda session: session.execute(sa.select(column).where(key == ident))
                 .scalar(), registry=False)
    return None if value is None else str(value)


_ARTIFACT_EXPERIMENT = re.compile(r"(?:workspaces/[^/]+/)?(\d+)(?:/|$)")


def artifact_experiment(path: str) -> str | None:
    """The experiment of a proxied artifact path: MLflow lays runs, logged models
    and traces out under ``[workspaces/<name>/]<experiment id>/...`` of the root.
    Judged on the path as MLflow canonicalizes it; one it would refuse (``..``,
    other separators, absolute) is refused here, before anyone is asked."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.uri import validate_path_is_safe

    try:
        canonical = validate_path_is_safe(path) if path else ""
    except MlflowException:
        raise BadRequest("Invalid artifact path") from None
    match = _ARTIFACT_EXPERIMENT.match(canonical.lstrip("/"))
    return match.group(1) if match else None


def experiment_id(ident: str) -> str:
    """An experiment id as MLflow's stores read it (they convert with ``int``), so
    that "01", " 1" and "+1" are judged as the experiment "1" they will serve."""
    try:
        return str(int(ident))
    except ValueError:
        return ident


class Ownership:
    def __init__(self, ttl_seconds: float):
        self._parents = TtlCache(None)
        self._owners = TtlCache(ttl_seconds)

    def root(self, kind: str, ident: str) -> tuple[str, str] | None:
        """(resource type, id) of the experiment or model that decides; None when
        the resource does not exist (MLflow then answers for it)."""
        if kind == "experiment":
            return EXPERIMENT, experiment_id(ident)
        if kind == "registered_model":
            return MODEL, ident
        if kind == "artifact":
            experiment = artifact_experiment(ident)
            return (EXPERIMENT, experiment_id(experiment)) if experiment else ("artifact_root", "")
        found, parent = self._parents.get((kind, ident))
        if not found:
            try:
                parent = _experiment_of(kind, ident)
            except Unsupported:
                parent = None
            if parent is not None and kind != "experiment_name":  # a name can move
                self._parents.put((kind, ident), parent)
        return (EXPERIMENT, parent) if parent is not None else None

    def owner(self, resource_type: str, resource_id: str):
        """The owner's name; None when unknown (an experiment created before
        Hokusai, or outside the server); MISSING for a model that does not exist."""
        found, owner = self._owners.get((resource_type, resource_id))
        if found:
            return owner
        if resource_type == EXPERIMENT:
            query = sa.select(O.c.owner).where(O.c.resource_type == EXPERIMENT,
                                               O.c.resource_id == resource_id)
        elif resource_type == MODEL:
            query = sa.select(M.c.owner).where(M.c.name == resource_id)
        else:
            return None
        try:
            row = read(lambda session: session.execute(query).first(),
                       registry=resource_type == MODEL)
        except Unsupported:
            row = None
        if not row and resource_type == MODEL:
            # Never cached: the model may be created a moment later, and a cached
            # MISSING (MANAGE for everyone) would outlive its creation.
            return MISSING
        owner = row[0] if row else None
        self._owners.put((resource_type, resource_id), owner)
        return owner
