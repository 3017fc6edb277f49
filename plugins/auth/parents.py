"""The experiment(s) an experiment's child belongs to, read from MLflow's
tracking tables through the tracking store's own session (plugins.store.access):
runs, logged models, traces, label schemas, review queues, issues, scorers,
evaluation datasets; prompt-optimization jobs from MLflow's job store, which
also records who submitted any job (its owner: ``job_creator``).

None: no such resource (MLflow then answers for it). A dataset's experiments
are a list (it may be attached to several, or to none); everything else has
one experiment for good.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from mlflow_hokusai.errors import Unsupported
from mlflow_hokusai.plugins.store.access import read


def _columns(kind: str):
    from mlflow.store.tracking.dbmodels import models as m

    return {"run": (m.SqlRun.experiment_id, m.SqlRun.run_uuid),
            "logged_model": (m.SqlLoggedModel.experiment_id, m.SqlLoggedModel.model_id),
            "experiment_name": (m.SqlExperiment.experiment_id, m.SqlExperiment.name),
            "trace": (m.SqlTraceInfo.experiment_id, m.SqlTraceInfo.request_id),
            "label_schema": (m.SqlLabelSchema.experiment_id, m.SqlLabelSchema.schema_id),
            "review_queue": (m.SqlReviewQueue.experiment_id, m.SqlReviewQueue.queue_id),
            "issue": (m.SqlIssue.experiment_id, m.SqlIssue.issue_id),
            "scorer": (m.SqlScorer.experiment_id, m.SqlScorer.scorer_id)}[kind]


def _job(job_id: str):
    """MLflow's job entity; None when there is no such job."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.jobs import get_job

    try:
        return get_job(job_id)
    except MlflowException:
        return None


def job_creator(job_id: str) -> tuple[bool, str | None]:
    """(whether the job exists, the principal MLflow recorded as submitting it:
    ``request.state.username``, which the pipeline sets; None for a job
    submitted without one)."""
    job = _job(job_id)
    return (job is not None, job.creator if job is not None else None)


def _job_experiment(job_id: str) -> str | None:
    """A prompt-optimization job records its experiment in its parameters (as
    basic-auth reads it); a job that is not one has none."""
    job = _job(job_id)
    try:
        params = json.loads(job.params or "{}") if job is not None else None
    except ValueError:
        return None
    experiment = params.get("experiment_id") if isinstance(params, dict) else None
    return str(experiment) if experiment not in (None, "") else None


def experiment_of(kind: str, ident: str) -> str | None:
    if kind == "prompt_job":
        return _job_experiment(ident)
    column, key = _columns(kind)
    try:
        value = read(lambda session: session.execute(sa.select(column).where(key == ident))
                     .scalar(), registry=False)
    except Unsupported:
        return None
    return None if value is None else str(value)


def dataset_experiments(dataset_id: str) -> list[str] | None:
    """The experiments an evaluation dataset is attached to (MLflow's entity
    associations, as its ``get_dataset_experiment_ids`` reads them)."""
    from mlflow.entities.entity_type import EntityAssociationType as T
    from mlflow.store.tracking.dbmodels.models import SqlEntityAssociation as A
    from mlflow.store.tracking.dbmodels.models import SqlEvaluationDataset as D

    def query(session):
        if session.execute(sa.select(D.dataset_id).where(D.dataset_id == dataset_id)).first() \
                is None:
            return None
        return [str(row) for row in session.execute(sa.select(A.destination_id).where(
            A.source_type == T.EVALUATION_DATASET, A.source_id == dataset_id,
            A.destination_type == T.EXPERIMENT)).scalars()]

    try:
        return read(query, registry=False)
    except Unsupported:
        return None
