"""Queries over the registry index and owner records, for Hokusai's endpoints.

Every query is an indexed lookup: by token key, contributor address, model name
(and version), run id or owner resource id; nothing scans all models or versions.
Rows come back scored (contributions.py): with direction, baseline and improvement.
"""

from __future__ import annotations

import sqlalchemy as sa

from mlflow_hokusai.db.schema import model_owners as MO
from mlflow_hokusai.db.schema import model_versions as V
from mlflow_hokusai.db.schema import owners as O
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.db.schema import tokens as T
from mlflow_hokusai.db.schema import version_owners as VO
from mlflow_hokusai.plugins.store.contributions import Scorer, token_baseline
from mlflow_hokusai.plugins.store.sql import first


def token(session, token_id: str) -> dict | None:
    """A bound token: its model, and its baseline version's number, value,
    metric and spelling of the token (contributions.token_baseline)."""
    bound = first(session, sa.select(T).where(T.c.token_key == token_id.lower()))
    baseline = token_baseline(session, bound["model_name"], bound["token_key"]) \
        if bound else None
    if baseline is None:
        return None
    return {"token_key": bound["token_key"], "model_name": bound["model_name"],
            "token_id": baseline["token_id"], "baseline_version": baseline["version"],
            "baseline_value": baseline["benchmark_value"],
            "metric_name": baseline["benchmark_metric"]}


def tokens(session, *, limit: int) -> list:
    """The first ``limit`` tokens in the order of their key (the primary key's index)."""
    return session.execute(sa.select(T).order_by(T.c.token_key).limit(limit)).mappings().all()


def token_of_model(session, name: str):
    return first(session, sa.select(T).where(T.c.model_name == name))


def model(session, name: str):
    return first(session, sa.select(M).where(M.c.name == name))


def model_owner(session, workspace: str, name: str):
    return first(session, sa.select(MO).where(MO.c.workspace == workspace, MO.c.name == name))


def version_owner(session, workspace: str, name: str, number: int):
    """Who created a live version (hokusai_version_owners: none for a deleted one)."""
    live = sa.exists().where(V.c.model_name == name, V.c.version == number)
    return first(session, sa.select(VO).where(VO.c.workspace == workspace, VO.c.name == name,
                                              VO.c.version == number, live))


def version(session, name: str, number: int) -> dict | None:
    row = first(session, sa.select(V).where(V.c.model_name == name, V.c.version == number))
    return Scorer(session).score(row) if row else None


def versions(session, name: str, *, after: int | None = None,
             limit: int | None = None) -> list[dict]:
    """A model's live versions after version ``after``, oldest first, scored."""
    query = sa.select(V).where(V.c.model_name == name).order_by(V.c.version)
    if after is not None:
        query = query.where(V.c.version > after)
    rows = session.execute(query.limit(limit) if limit else query).mappings().all()
    return Scorer(session).history(rows)


def version_summary(session, name: str) -> tuple[int, int | None]:
    """(how many live versions, the latest one) of a model."""
    count, latest = session.execute(sa.select(sa.func.count(), sa.func.max(V.c.version))
                                    .where(V.c.model_name == name)).one()
    return count, latest


def mlflow_states(session, name: str, numbers: list[int]) -> dict[int, dict]:
    """MLflow's stage and aliases of some versions of a model, by key."""
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlRegisteredModelAlias

    states = {version: {"stage": stage, "aliases": []} for version, stage in session.execute(
        sa.select(SqlModelVersion.version, SqlModelVersion.current_stage).where(
            SqlModelVersion.name == name, SqlModelVersion.version.in_(numbers)))}
    for alias, version in session.execute(
            sa.select(SqlRegisteredModelAlias.alias, SqlRegisteredModelAlias.version).where(
                SqlRegisteredModelAlias.name == name,
                SqlRegisteredModelAlias.version.in_(numbers))):
        states[version]["aliases"].append(alias)
    return states


def contributions(session, address: str) -> list[dict]:
    """Versions credited to ``address`` (normalised), oldest contribution first."""
    rows = session.execute(sa.select(V).where(V.c.contributor == address)
                           .order_by(V.c.contributed_at, V.c.model_name, V.c.version)
                           ).mappings().all()
    scorer = Scorer(session)
    return [scorer.score(row) for row in rows]


def ancestors(session, name: str, number: int, limit: int = 100) -> list[dict]:
    """The parent chain of a version, nearest first (unscored)."""
    chain: list[dict] = []
    parent = session.execute(sa.select(V.c.parent_version).where(
        V.c.model_name == name, V.c.version == number)).scalar()
    while parent is not None and len(chain) < limit:
        row = first(session, sa.select(V).where(V.c.model_name == name, V.c.version == parent))
        if row is None:
            break
        chain.append(dict(row))
        parent = row["parent_version"]
    return chain


def owner(session, resource_type: str, resource_id: str):
    return first(session, sa.select(O).where(O.c.resource_type == resource_type,
                                             O.c.resource_id == resource_id))


def run_lineage(tracking_session, run_id: str | None) -> dict | None:
    """A source run's experiment and logged dataset inputs, from MLflow's own
    tables by primary key and index (on the tracking store's session: the runs
    may live in another database than the registry)."""
    from mlflow.store.tracking.dbmodels.models import SqlDataset, SqlExperiment, SqlInput, SqlRun

    if not run_id:
        return None
    experiment = tracking_session.execute(
        sa.select(SqlRun.experiment_id, SqlExperiment.name)
        .join(SqlExperiment, SqlExperiment.experiment_id == SqlRun.experiment_id)
        .where(SqlRun.run_uuid == run_id)).first()
    if experiment is None:
        return None
    datasets = tracking_session.execute(
        sa.select(SqlDataset.name, SqlDataset.digest, SqlDataset.dataset_source_type,
                  SqlDataset.dataset_source)
        .join(SqlInput, SqlInput.source_id == SqlDataset.dataset_uuid)
        .where(SqlInput.destination_type == "RUN", SqlInput.destination_id == run_id,
               SqlInput.source_type == "DATASET")
        .order_by(SqlDataset.name)).mappings().all()
    return {"run_id": run_id, "experiment_id": str(experiment.experiment_id),
            "experiment_name": experiment.name,
            "datasets": [{"name": d["name"], "digest": d["digest"],
                          "source_type": d["dataset_source_type"],
                          "source": d["dataset_source"]} for d in datasets]}
