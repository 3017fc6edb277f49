"""Bring a store's database up to Hokusai's schema and triggers, and build the
registry index from MLflow's own tables when it is missing: a database that
plain MLflow filled before Hokusai arrived, or one re-indexed with
``hokusai db reindex``. From then on the triggers keep it (triggers.py).
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
from mlflow.exceptions import MlflowException
from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlRegisteredModel
from sqlalchemy.orm import Session, selectinload

from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.schema import model_versions as V
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.db.schema import tokens as T
from mlflow_hokusai.db.schema import version_owners as VO
from mlflow_hokusai.plugins.store import tags, triggers

_logger = logging.getLogger(__name__)
_COLUMNS = {tags.BENCHMARK_METRIC: "benchmark_metric", tags.BENCHMARK_VALUE: "benchmark_value",
            tags.BENCHMARK_DIRECTION: "benchmark_direction", tags.CONTRIBUTOR: "contributor"}


def _needs_rebuild(session) -> bool:
    indexed = session.execute(sa.select(M.c.name).limit(1)).first()
    return indexed is None and session.query(SqlRegisteredModel.name).first() is not None


def prepare(engine) -> None:
    """Upgrade Hokusai's tables and triggers; index what MLflow holds if nothing is."""
    migrate.upgrade(engine)
    if not triggers.supported(engine):
        return
    with Session(engine) as session:
        if triggers.current(engine) and not _needs_rebuild(session):
            return
    with migrate.locked(engine):
        # Decided before the triggers go in: once they do, a concurrent MLflow
        # write would make the index look built.
        with Session(engine) as session:
            needed = _needs_rebuild(session)
        # A new trigger set may define the index differently: what the older set
        # wrote is rebuilt, so that the index reads as the new set would keep it.
        if triggers.install(engine) or needed:
            with Session(engine) as session:
                rebuild(session)
                session.commit()


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _tolerant(entities, keys) -> dict:
    """Hokusai tags read as the triggers read them: values that parse (MLflow may
    hold values written before the checks). An address is read without its EIP-55
    checksum, as SQL must (triggers.py): a writer that bypassed the store got it
    indexed, so must a rebuild."""
    parsed = {}
    for tag in entities:
        if tag.key not in keys:
            continue
        if tag.key == tags.CONTRIBUTOR and isinstance(tag.value, str) \
                and _ADDRESS.fullmatch(tag.value):
            parsed[tag.key] = tag.value.lower()
        else:
            try:
                parsed[tag.key] = tags.parse(tag.key, tag.value)
            except MlflowException as error:
                _logger.warning("Not indexed: %s", error.message)
    return parsed


class _Tokens:
    """First come, first bound: a token belongs to one model, a model has one token."""

    def __init__(self):
        self.rows: dict[str, dict] = {}
        self._by_model: dict[str, str] = {}

    def bind(self, version, token_id: str) -> bool:
        key, name = token_id.lower(), version.name
        if key not in self.rows and name not in self._by_model:
            self.rows[key] = {"token_key": key, "token_id": token_id, "model_name": name,
                              "bound_at": version.creation_time}
            self._by_model[name] = key
        return self._by_model.get(name) == key


class _Parents:
    """One model's parents, as the triggers keep them: a version's
    ``hokusai_parent_version`` (an earlier version of the model), else the
    previous live version; a deleted parent stands for its own parent. MLflow
    keeps a deleted version's row and tags, so its parent is known here too.
    Versions are given in order, deleted ones included."""

    def __init__(self):
        self.live: list[int] = []
        self._of: dict[int, int | None] = {}  # every version seen: its parent

    def add(self, version, parsed: dict, deleted: bool) -> tuple[int | None, bool]:
        number, tagged = version.version, parsed.get(tags.PARENT_VERSION)
        explicit = tagged in self._of and tagged < number
        if tagged is not None and not explicit and not deleted:
            _logger.warning("Indexed %s:%s without its parent %s: no earlier version",
                            version.name, number, tagged)
        if explicit:
            assert tagged is not None  # a number of this model's
            parent = tagged if tagged in self.live else self._of[tagged]
        else:
            parent = self.live[-1] if self.live else None
        self._of[number] = parent
        if not deleted:
            self.live.append(number)
        return parent, explicit


def _version_row(version, parsed: dict, parent: int | None, explicit: bool,
                 bound: bool) -> dict:
    row = {"model_name": version.name, "version": version.version,
           "created_at": version.creation_time, "run_id": version.run_id,
           "parent_version": parent, "parent_explicit": explicit,
           "token_id": None, "token_key": None,
           "contributed_at": version.creation_time if tags.CONTRIBUTOR in parsed else None,
           **{column: parsed.get(key) for key, column in _COLUMNS.items()}}
    if bound:
        row.update(token_id=parsed[tags.TOKEN_ID], token_key=parsed[tags.TOKEN_ID].lower())
    return row


def rebuild(session) -> int:
    """Index every registered model and live version anew; returns the version count."""
    if session.get_bind().dialect.name == "postgresql":
        # Writers wait until this commits: a trigger's update landing on a row
        # the rebuild has just replaced would be lost. (SQLite has one writer.)
        session.execute(sa.text("LOCK TABLE registered_models, registered_model_tags, "
                                "model_versions, model_version_tags IN SHARE MODE"))
    for table in (V, T, M):
        session.execute(table.delete())
    models = session.query(SqlRegisteredModel).options(
        selectinload(SqlRegisteredModel.registered_model_tags))
    model_rows = [{"name": model.name, "created_at": model.creation_time,
                   "benchmark_direction": _tolerant(model.registered_model_tags, tags.MODEL_TAGS)
                   .get(tags.BENCHMARK_DIRECTION)} for model in models]
    versions = (session.query(SqlModelVersion)
                .options(selectinload(SqlModelVersion.model_version_tags))
                .order_by(SqlModelVersion.name, SqlModelVersion.version))
    tokens, rows = _Tokens(), []
    parents: dict[str, _Parents] = {}
    owned = set(session.execute(sa.select(VO.c.workspace, VO.c.name, VO.c.version)).tuples())
    owners = []
    for version in versions:
        if (version.workspace, version.name, version.version) not in owned:
            # Written before the triggers: MLflow's user_id is all there is.
            owners.append({"workspace": version.workspace, "name": version.name,
                           "version": version.version, "owner": version.user_id,
                           "created_at": version.creation_time or 0})
        parsed = _tolerant(version.model_version_tags, tags.VERSION_TAGS)
        deleted = version.current_stage == STAGE_DELETED_INTERNAL
        parent, explicit = parents.setdefault(version.name, _Parents()).add(
            version, parsed, deleted)
        if deleted:
            continue
        token_id = parsed.get(tags.TOKEN_ID)
        bound = tokens.bind(version, token_id) if token_id else False
        if token_id and not bound:
            _logger.warning("Indexed %s:%s without its token %s: another model holds one of "
                            "them", version.name, version.version, token_id)
        rows.append(_version_row(version, parsed, parent, explicit, bound))
    for table, table_rows in ((M, model_rows), (V, rows), (T, list(tokens.rows.values())),
                              (VO, owners)):
        if table_rows:
            session.execute(table.insert(), table_rows)
    _logger.info("Registry index rebuilt: %d model versions", len(rows))
    return len(rows)
