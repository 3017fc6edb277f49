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

from mlflow_hokusai.db.schema import model_owners as MO
from mlflow_hokusai.db.schema import owners as O
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.errors import BadRequest, Unsupported
from mlflow_hokusai.plugins.auth import parents
from mlflow_hokusai.plugins.auth.tenants import DEFAULT
from mlflow_hokusai.plugins.auth.ttlcache import TtlCache
from mlflow_hokusai.plugins.store.access import read

EXPERIMENT, MODEL, JOB = "experiment", "registered_model", "job"
# A registered model the index has no row for does not exist (the triggers keep
# a row for every model): nothing there to protect yet.
MISSING = object()


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
        # A dataset is attached to and detached from experiments: trusted as long as an owner.
        self._datasets = TtlCache(ttl_seconds)
        # Kinds other plugins add: kind -> finder of (resource type, id), or None
        # when the resource does not exist (a deployment belongs to its model).
        self.finders: dict = {}

    def roots(self, kind: str, ident: str) -> list[tuple[str, str]] | None:
        """Every (resource type, id) that decides: one, or for a dataset each
        experiment it is attached to (one attached to none has only the default
        permission, as a resource with no owner). None: no such resource."""
        if kind != "dataset":
            root = self.root(kind, ident)
            return None if root is None else [root]
        found, experiments = self._datasets.get(ident)
        if not found:
            experiments = parents.dataset_experiments(ident)
            self._datasets.put(ident, experiments)
        if experiments is None:
            return None
        return [(EXPERIMENT, experiment_id(e)) for e in experiments] or [("dataset", ident)]

    def root(self, kind: str, ident: str) -> tuple[str, str] | None:
        """(resource type, id) of the experiment or model that decides; None when
        the resource does not exist (MLflow then answers for it)."""
        if kind == "experiment":
            return EXPERIMENT, experiment_id(ident)
        if kind == "registered_model":
            return MODEL, ident
        if kind in self.finders:
            return self.finders[kind](ident)
        if kind == JOB:  # a job of MLflow's job API is its own root: its submitter owns it
            return (JOB, ident) if self._job_creator(ident) is not MISSING else None
        if kind == "artifact":
            experiment = artifact_experiment(ident)
            return (EXPERIMENT, experiment_id(experiment)) if experiment else ("artifact_root", "")
        found, parent = self._parents.get((kind, ident))
        if not found:
            parent = parents.experiment_of(kind, ident)
            if parent is not None and kind != "experiment_name":  # a name can move
                self._parents.put((kind, ident), parent)
        return (EXPERIMENT, parent) if parent is not None else None

    def _job_creator(self, job_id: str):
        """Who submitted the job (None: nobody recorded), MISSING if there is no
        such job. A job's creator never changes: cached for good."""
        found, creator = self._parents.get((JOB, job_id))
        if found:
            return creator
        exists, creator = parents.job_creator(job_id)
        if not exists:
            return MISSING
        self._parents.put((JOB, job_id), creator)
        return creator

    def cached_owner(self, resource_type: str, resource_id: str) -> tuple[bool, object]:
        """(found, owner) of an experiment as this worker last read it (within
        the TTL), without asking the database; found is False when it must."""
        if resource_type != EXPERIMENT:
            return False, None
        return self._owners.get((EXPERIMENT, resource_id, ""))

    def owner(self, resource_type: str, resource_id: str, workspace: str = ""):
        """The owner's name; None when unknown (an experiment created before
        Hokusai, or outside the server); MISSING for a model that does not exist.
        A model's owner is per workspace (``""``: MLflow's default one);
        experiment ids are global."""
        workspace = (workspace or DEFAULT) if resource_type == MODEL else ""
        if resource_type == JOB:
            creator = self._job_creator(resource_id)
            return None if creator is MISSING else creator
        found, owner = self._owners.get((resource_type, resource_id, workspace))
        if found:
            return owner
        if resource_type == EXPERIMENT:
            query = sa.select(O.c.owner).where(O.c.resource_type == EXPERIMENT,
                                               O.c.resource_id == resource_id)
        elif resource_type == MODEL:
            # The index row tells that the model exists (in some workspace).
            query = sa.select(MO.c.owner).select_from(M.outerjoin(
                MO, sa.and_(MO.c.name == M.c.name, MO.c.workspace == workspace))) \
                .where(M.c.name == resource_id)
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
        self._owners.put((resource_type, resource_id, workspace), owner)
        return owner
