"""The model registry store under Hokusai: MLflow's SQLAlchemy registry, with the
registry index (tokens, benchmarks, contributions, lineage, owners) kept in the
same transactions as MLflow's writes.

Each write first checks the Hokusai tags it carries (no database needed), then
lets MLflow do its work with ``upkeep`` pending: the index change runs on
MLflow's session just before MLflow commits.
"""

from __future__ import annotations

import functools

from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlRegisteredModel
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.sqlalchemy_workspace_store import WorkspaceAwareSqlAlchemyStore

from mlflow_hokusai.plugins.store import backfill, transactions
from mlflow_hokusai.plugins.store import tags as hokusai_tags
from mlflow_hokusai.plugins.store.index import RegistryIndex
from mlflow_hokusai.plugins.store.owners import Owner


def _created(created: list, kind: type):
    return next(obj for obj in created if isinstance(obj, kind))


class HokusaiRegistryMixin:
    hokusai_index = True  # what the Hokusai endpoints look for

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        backfill.prepare(self.engine)
        self.index = RegistryIndex()
        transactions.install(self)

    # -- registered models -----------------------------------------------------
    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        model_tags = hokusai_tags.parse_all(tags, hokusai_tags.MODEL_TAGS)
        owner = Owner.current()

        def work(session, created):
            model = _created(created, SqlRegisteredModel)
            self.index.model_created(session, model.name, model.creation_time, model_tags, owner)

        with transactions.upkeep(work):
            return super().create_registered_model(name, tags, description, deployment_job_id)

    def rename_registered_model(self, name, new_name):
        with transactions.upkeep(lambda s, _: self.index.model_renamed(s, name, new_name)):
            return super().rename_registered_model(name, new_name)

    def delete_registered_model(self, name):
        with transactions.upkeep(lambda s, _: self.index.model_deleted(s, name)):
            return super().delete_registered_model(name)

    def set_registered_model_tag(self, name, tag):
        if tag.key not in hokusai_tags.MODEL_TAGS:
            return super().set_registered_model_tag(name, tag)
        value = hokusai_tags.parse(tag.key, tag.value)
        with transactions.upkeep(
                lambda s, _: self.index.model_direction_changed(s, name, value)):
            return super().set_registered_model_tag(name, tag)

    def delete_registered_model_tag(self, name, key):
        if key not in hokusai_tags.MODEL_TAGS:
            return super().delete_registered_model_tag(name, key)
        with transactions.upkeep(
                lambda s, _: self.index.model_direction_changed(s, name, None)):
            return super().delete_registered_model_tag(name, key)

    # -- model versions --------------------------------------------------------
    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None,
                             description=None, local_model_path=None, model_id=None):
        version_tags = hokusai_tags.parse_all(tags, hokusai_tags.VERSION_TAGS)
        owner = Owner.current()

        def work(session, created):
            version = _created(created, SqlModelVersion)
            version.user_id = owner.name  # MLflow's own column, shown by its API
            self.index.version_created(session, version.name, version.version, version.run_id,
                                       version.creation_time, version_tags, owner)

        with transactions.upkeep(work):
            model_version = super().create_model_version(
                name, source, run_id, tags, run_link, description, local_model_path, model_id)
        model_version._user_id = owner.name
        return model_version

    def set_model_version_tag(self, name, version, tag):
        if tag.key not in hokusai_tags.VERSION_TAGS:
            return super().set_model_version_tag(name, version, tag)
        value = hokusai_tags.parse(tag.key, tag.value)
        with transactions.upkeep(lambda s, _: self.index.version_tag_changed(
                s, name, int(version), tag.key, value)):
            return super().set_model_version_tag(name, version, tag)

    def delete_model_version_tag(self, name, version, key):
        if key not in hokusai_tags.VERSION_TAGS:
            return super().delete_model_version_tag(name, version, key)
        with transactions.upkeep(lambda s, _: self.index.version_tag_changed(
                s, name, int(version), key, None)):
            return super().delete_model_version_tag(name, version, key)

    def delete_model_version(self, name, version):
        with transactions.upkeep(
                lambda s, _: self.index.version_deleted(s, name, int(version))):
            return super().delete_model_version(name, version)


@functools.cache
def registry_store_class(workspaces: bool | None = None) -> type:
    """Hokusai's index on the same base class MLflow itself would pick."""
    workspaces = MLFLOW_ENABLE_WORKSPACES.get() if workspaces is None else workspaces
    base = WorkspaceAwareSqlAlchemyStore if workspaces else SqlAlchemyStore
    return type("HokusaiRegistryStore", (HokusaiRegistryMixin, base), {})
