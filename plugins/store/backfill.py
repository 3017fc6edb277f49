"""Bring a store's database up to Hokusai's schema, and build the registry
index from MLflow's own tables when it is missing: a database that plain MLflow
filled before Hokusai arrived, or one re-indexed with ``hokusai db reindex``.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
from mlflow.exceptions import MlflowException
from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlRegisteredModel
from sqlalchemy.orm import Session, selectinload

from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.schema import model_versions as V
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.db.schema import tokens as T
from mlflow_hokusai.plugins.store import tags
from mlflow_hokusai.plugins.store.index import RegistryIndex
from mlflow_hokusai.plugins.store.owners import Owner

_logger = logging.getLogger(__name__)
_UNKNOWN = Owner(None, None)


def _needs_rebuild(session) -> bool:
    indexed = session.execute(sa.select(M.c.name).limit(1)).first()
    return indexed is None and session.query(SqlRegisteredModel.name).first() is not None


def prepare(engine) -> None:
    """Upgrade Hokusai's tables; index what MLflow holds if nothing is indexed."""
    migrate.upgrade(engine)
    with Session(engine) as session:
        if not _needs_rebuild(session):
            return
    with migrate.locked(engine), Session(engine) as session:
        if _needs_rebuild(session):  # another worker may have done it meanwhile
            rebuild(session, RegistryIndex())
            session.commit()


def _tolerant(entities, keys) -> dict:
    """Hokusai tags that parse; MLflow may hold values written before the checks."""
    parsed = {}
    for tag in entities:
        if tag.key in keys:
            try:
                parsed[tag.key] = tags.parse(tag.key, tag.value)
            except MlflowException as error:
                _logger.warning("Not indexed: %s", error.message)
    return parsed


def rebuild(session, index: RegistryIndex) -> int:
    """Index every registered model and live version anew; returns the version count."""
    for table in (V, T, M):
        session.execute(table.delete())
    for model in session.query(SqlRegisteredModel).order_by(SqlRegisteredModel.name):
        index.model_created(session, model.name, model.creation_time,
                            _tolerant(model.registered_model_tags, tags.MODEL_TAGS), _UNKNOWN)
    versions = (session.query(SqlModelVersion)
                .filter(SqlModelVersion.current_stage != STAGE_DELETED_INTERNAL)
                .options(selectinload(SqlModelVersion.model_version_tags))
                .order_by(SqlModelVersion.name, SqlModelVersion.version))
    count = 0
    for version in versions.all():
        version_tags = _tolerant(version.model_version_tags, tags.VERSION_TAGS)
        owner = Owner(version.user_id, None)
        args = (session, version.name, version.version, version.run_id, version.creation_time)
        try:
            index.version_created(*args, version_tags, owner)
        except MlflowException as error:  # a conflicting token or a bad parent
            _logger.warning("Indexed %s:%s without its token and parent: %s", version.name,
                            version.version, error.message)
            session.connection().execute(V.delete().where(
                V.c.model_name == version.name, V.c.version == version.version))
            index.version_created(*args, {k: v for k, v in version_tags.items()
                                          if k not in (tags.TOKEN_ID, tags.PARENT_VERSION)},
                                  owner)
        count += 1
    _logger.info("Registry index rebuilt: %d model versions", count)
    return count
