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

from mlflow_hokusai import signals
from mlflow_hokusai.mlflow_compat import RegistryStoreBase, RegistryStoreHooks
from mlflow_hokusai.plugins.auth import tenants, version_sources, visibility
from mlflow_hokusai.plugins.store import (
    backfill,
    credits,
    owners,
    refusals,
    sqlite_pragmas,
    transactions,
    triggers,
)
from mlflow_hokusai.plugins.store import tags as hokusai_tags
from mlflow_hokusai.plugins.store.owners import Owner


class HokusaiRegistryMixin(RegistryStoreBase):
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

    def hokusai_registry_clauses(self, model):
        # Applied to every registry table MLflow searches (models, versions, their
        # tags): all have the model's name (mlflow_compat.RegistryStoreHooks).
        name = getattr(model, "name", None)
        return [] if name is None else visibility.model_filters(name)

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
        # Every route that serves a version's files asks for this location first.
        self._readable(name)
        uri = super().get_model_version_download_uri(name, version)
        if self._hokusai_ready:
            version_sources.judge_read(uri)
        return uri

    def get_model_version_by_alias(self, name, alias):
        self._readable(name)
        return super().get_model_version_by_alias(name, alias)

    # -- registered models -----------------------------------------------------
    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        hokusai_tags.parse_all(tags, hokusai_tags.MODEL_TAGS)
        owner = Owner.current()
        with refusals.explained(self, name), transactions.upkeep(
                lambda session, created: self._model_created(session, created, name, owner)):
            return super().create_registered_model(name, tags, description, deployment_job_id)

    def _model_created(self, session, created: list, name: str, owner: Owner) -> None:
        owners.model_created(session, created, name, owner)
        # What a model of this name deleted outside the server left (its rows, its
        # grants) is not the new model's: the plugins drop it as for a deleted model.
        signals.model_changed.send(self, session=session, name=name, new_name=None)

    def _model_changed(self, session, name: str, new_name: str | None) -> None:
        owners.model_changed(session, tenants.current_workspace(), name, new_name)
        if new_name != name:  # MLflow renames a model to its own name, doing nothing
            signals.model_changed.send(self, session=session, name=name, new_name=new_name)

    def rename_registered_model(self, name, new_name):
        with refusals.explained(self, new_name), transactions.upkeep(
                lambda session, _: self._model_changed(session, name, new_name)):
            return super().rename_registered_model(name, new_name)

    def delete_registered_model(self, name):
        with transactions.upkeep(lambda session, _: self._model_changed(session, name, None)):
            return super().delete_registered_model(name)

    def set_registered_model_tag(self, name, tag):
        if tag.key in hokusai_tags.MODEL_TAGS:
            hokusai_tags.parse(tag.key, tag.value)
        return super().set_registered_model_tag(name, tag)

    # -- model versions --------------------------------------------------------
    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None,
                             description=None, local_model_path=None, model_id=None):
        version_tags = hokusai_tags.parse_all(tags, hokusai_tags.VERSION_TAGS)
        version_sources.judge(source, run_id, model_id, creating=True)
        proof = credits.check(version_tags)
        owner = Owner.current()
        with owners.version_owner(owner), refusals.explained(self, name, version_tags), \
                transactions.upkeep(lambda session, created: owners.version_key_id(
                    session, created, owner)):
            model_version = super().create_model_version(
                name, source, run_id, tags, run_link, description, local_model_path, model_id)
        credits.written(name, model_version.version, version_tags,
                        {tag.key: tag.value for tag in tags or []}, proof, source=source,
                        run_id=run_id)
        if hokusai_tags.BENCHMARK_VALUE in version_tags:
            signals.benchmark_tag_set.send(self, model_name=name,
                                           version=int(model_version.version),
                                           value=version_tags[hokusai_tags.BENCHMARK_VALUE])
        return model_version

    def set_model_version_tag(self, name, version, tag):
        if tag.key not in hokusai_tags.VERSION_TAGS:
            return super().set_model_version_tag(name, version, tag)
        parsed = {tag.key: hokusai_tags.parse(tag.key, tag.value)}
        proof = credits.check(parsed)
        with refusals.explained(self, name, parsed):
            result = super().set_model_version_tag(name, version, tag)
        credits.written(name, version, parsed, {tag.key: tag.value}, proof)
        if tag.key == hokusai_tags.BENCHMARK_VALUE:
            signals.benchmark_tag_set.send(self, model_name=name, version=int(version),
                                           value=parsed[tag.key])
        return result


@functools.cache
def registry_store_class(workspaces: bool | None = None) -> type:
    """Hokusai's index on the same base class MLflow itself would pick."""
    workspaces = MLFLOW_ENABLE_WORKSPACES.get() if workspaces is None else workspaces
    base = WorkspaceAwareSqlAlchemyStore if workspaces else SqlAlchemyStore
    return type("HokusaiRegistryStore", (HokusaiRegistryMixin, RegistryStoreHooks, base), {})
