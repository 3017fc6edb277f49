"""The model registry store under Hokusai: MLflow's SQLAlchemy registry over a
database whose triggers keep the registry index (tokens, benchmarks,
contributions, lineage) in step with every write (triggers.py).

What is left to Python: checking the Hokusai tags a write carries before MLflow
writes anything (tags.py), explaining the triggers' refusals (refusals.py), and
recording who created a model or version (owners.py).
"""

from __future__ import annotations

import functools

from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.sqlalchemy_workspace_store import WorkspaceAwareSqlAlchemyStore

from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.store import (backfill, owners, refusals, sqlite_pragmas,
                                          transactions, triggers)
from mlflow_hokusai.plugins.store import tags as hokusai_tags
from mlflow_hokusai.plugins.store.owners import Owner


class HokusaiRegistryMixin:
    hokusai_index = True  # what the Hokusai endpoints look for
    _hokusai_ready = False  # gets made while MLflow builds the store are not judged

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not triggers.supported(self.engine):
            raise MlflowException(
                "Hokusai's registry index is kept by database triggers written for "
                f"PostgreSQL and SQLite; {self.engine.dialect.name} is not supported")
        backfill.prepare(self.engine)
        refusals.listen(self.engine)
        sqlite_pragmas.install(self.engine)
        transactions.install(self)
        self._hokusai_ready = True

    # -- searches show only what the caller may read (plugins/auth/visibility.py)
    def search_registered_models(self, *args, **kwargs):
        with visibility.searching():
            return super().search_registered_models(*args, **kwargs)

    def search_model_versions(self, *args, **kwargs):
        with visibility.searching():
            return super().search_model_versions(*args, **kwargs)

    def _get_workspace_clauses(self, model):
        # MLflow's hook for workspace filters, applied to every registry table it
        # searches (models, versions, their tags): all have the model's name.
        clauses = super()._get_workspace_clauses(model)
        name = getattr(model, "name", None)
        return clauses if name is None else [*clauses, *visibility.model_filters(name)]

    def _readable(self, name: str) -> None:
        if self._hokusai_ready and visibility.hidden("registered_model", name):
            raise MlflowException(f"Registered Model with name={name} not found",
                                  RESOURCE_DOES_NOT_EXIST)

    def get_registered_model(self, name):
        self._readable(name)
        return super().get_registered_model(name)

    def get_latest_versions(self, name, stages=None):
        self._readable(name)
        return super().get_latest_versions(name, stages)

    def get_model_version(self, name, version):
        self._readable(name)
        return super().get_model_version(name, version)

    def get_model_version_download_uri(self, name, version):
        self._readable(name)
        return super().get_model_version_download_uri(name, version)

    def get_model_version_by_alias(self, name, alias):
        self._readable(name)
        return super().get_model_version_by_alias(name, alias)

    # -- registered models -----------------------------------------------------
    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        hokusai_tags.parse_all(tags, hokusai_tags.MODEL_TAGS)
        owner = Owner.current()
        with transactions.upkeep(lambda session, _: owners.model_created(session, name, owner)):
            return super().create_registered_model(name, tags, description, deployment_job_id)

    def set_registered_model_tag(self, name, tag):
        if tag.key in hokusai_tags.MODEL_TAGS:
            hokusai_tags.parse(tag.key, tag.value)
        return super().set_registered_model_tag(name, tag)

    # -- model versions --------------------------------------------------------
    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None,
                             description=None, local_model_path=None, model_id=None):
        version_tags = hokusai_tags.parse_all(tags, hokusai_tags.VERSION_TAGS)
        owner = Owner.current()
        with owners.version_owner(owner), refusals.explained(self, name, version_tags):
            model_version = super().create_model_version(
                name, source, run_id, tags, run_link, description, local_model_path, model_id)
        model_version._user_id = owner.name  # MLflow's object still holds the stamp
        return model_version

    def set_model_version_tag(self, name, version, tag):
        if tag.key not in hokusai_tags.VERSION_TAGS:
            return super().set_model_version_tag(name, version, tag)
        value = hokusai_tags.parse(tag.key, tag.value)
        with refusals.explained(self, name, {tag.key: value}):
            return super().set_model_version_tag(name, version, tag)


@functools.cache
def registry_store_class(workspaces: bool | None = None) -> type:
    """Hokusai's index on the same base class MLflow itself would pick."""
    workspaces = MLFLOW_ENABLE_WORKSPACES.get() if workspaces is None else workspaces
    base = WorkspaceAwareSqlAlchemyStore if workspaces else SqlAlchemyStore
    return type("HokusaiRegistryStore", (HokusaiRegistryMixin, base), {})
