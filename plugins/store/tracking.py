"""The tracking store: MLflow's SQLAlchemy store, with Hokusai's rules on top:
runs belong to who authenticated, and experiments and runs record their creator
in the same transaction as MLflow's insert."""

from __future__ import annotations

import functools

from mlflow.entities import RunTag
from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlRun
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.tracking.sqlalchemy_workspace_store import WorkspaceAwareSqlAlchemyStore
from mlflow.utils.mlflow_tags import MLFLOW_USER

from mlflow_hokusai.mlflow_compat import TrackingStoreBase, TrackingStoreHooks
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.artifacts import confinement
from mlflow_hokusai.plugins.artifacts.locations import InvalidLocation
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.store import backfill, owners, reserved, transactions
from mlflow_hokusai.plugins.store.owners import Owner


def _record_created(kind: type, resource_type: str, id_attribute: str, owner: Owner):
    def work(session, created):
        for obj in created:
            if isinstance(obj, kind):
                owners.record(session, resource_type, getattr(obj, id_attribute), owner)
    return transactions.upkeep(work)


class HokusaiTrackingMixin(TrackingStoreBase):
    hokusai_index = True  # what the Hokusai endpoints look for

    _hokusai_ready = False  # gets made while MLflow builds the store are not judged

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        backfill.prepare(self.engine)
        transactions.install(self)
        self._hokusai_ready = True

    def _hidden(self, experiment_id) -> bool:
        # While MLflow builds the store (it reads the Default experiment), the
        # check, which reads through the built store, would wait on itself.
        return self._hokusai_ready and visibility.hidden("experiment", experiment_id)

    # Searches show only what the caller may read, filtered by the database
    # itself (plugins/auth/visibility.py), so that pages stay full.
    def search_experiments(self, *args, **kwargs):
        with visibility.searching():
            return super().search_experiments(*args, **kwargs)

    def search_runs(self, *args, **kwargs):
        with visibility.searching():
            return super().search_runs(*args, **kwargs)

    def search_traces(self, *args, **kwargs):
        with visibility.searching():  # through hokusai_filter_experiment_ids below
            return super().search_traces(*args, **kwargs)

    def search_logged_models(self, experiment_ids, *args, **kwargs):
        with visibility.searching(), self.ManagedSessionMaker() as session:
            experiment_ids = visibility.visible_experiment_ids(session, experiment_ids)
        return super().search_logged_models(experiment_ids, *args, **kwargs)

    # MLflow's private hooks reach these through mlflow_compat.TrackingStoreHooks.
    def hokusai_experiment_clauses(self):
        clause = visibility.experiment_clause(SqlExperiment.experiment_id)
        return [] if clause is None else [clause]

    def hokusai_filter_experiment_ids(self, session, experiment_ids):
        return visibility.visible_experiment_ids(session, experiment_ids)

    def get_experiment(self, experiment_id):
        if self._hidden(experiment_id):
            raise MlflowException(f"No Experiment with id={experiment_id} exists",
                                  RESOURCE_DOES_NOT_EXIST)
        return super().get_experiment(experiment_id)

    def get_experiment_by_name(self, experiment_name):
        experiment = super().get_experiment_by_name(experiment_name)
        if experiment is not None and self._hidden(experiment.experiment_id):
            return None  # MLflow's answer for a name nobody holds
        return experiment

    def get_run(self, run_id):
        run = super().get_run(run_id)
        if self._hidden(run.info.experiment_id):
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
        return run

    def create_experiment(self, name, artifact_location=None, tags=None):
        if artifact_location:
            try:
                confinement.check(artifact_location)
            except InvalidLocation as error:
                raise MlflowException.invalid_parameter_value(
                    f"Invalid artifact_location: {error}") from None
        owner = Owner(None, None) if reserved.check_create(name) else Owner.current()
        with _record_created(SqlExperiment, "experiment", "experiment_id", owner):
            return super().create_experiment(name, artifact_location, tags)

    def rename_experiment(self, experiment_id, new_name):
        reserved.check_rename(new_name)
        return super().rename_experiment(experiment_id, new_name)

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        owner = Owner.current()
        if current_principal() is not None:
            # Inside the server the run's user is who authenticated, not what the
            # client claims (MLflow's client sends the local OS user, as user_id
            # and as the mlflow.user tag the UI shows).
            user_id = owner.name
            tags = [tag for tag in tags or [] if tag.key != MLFLOW_USER] + \
                [RunTag(MLFLOW_USER, user_id)]
        with _record_created(SqlRun, "run", "run_uuid", owner):
            return super().create_run(experiment_id, user_id, start_time, tags, run_name)


def _keep_principal_tag(store, run_id, tags) -> None:
    """Inside the server a run's ``mlflow.user`` is who created it (create_run):
    setting it to anything else afterwards would forge that. Re-sending the same
    value is harmless and allowed."""
    changed = [tag for tag in tags or [] if tag.key == MLFLOW_USER]
    if not changed or current_principal() is None:
        return
    current = store.get_run(run_id).data.tags.get(MLFLOW_USER)
    if any(tag.value != current for tag in changed):
        raise MlflowException.invalid_parameter_value(
            f"The {MLFLOW_USER} tag is the principal that created the run and cannot be "
            "changed or deleted")


class _PrincipalTagMixin(TrackingStoreBase):
    def set_tag(self, run_id, tag):
        _keep_principal_tag(self, run_id, [tag])
        return super().set_tag(run_id, tag)

    def hokusai_setting_tags(self, run_id, tags):  # set-tags and log-batch
        _keep_principal_tag(self, run_id, tags)

    def delete_tag(self, run_id, key):
        if key == MLFLOW_USER:
            # None: no value equals it, so the deletion counts as a change.
            _keep_principal_tag(self, run_id,
                                [RunTag(MLFLOW_USER, None)])  # type: ignore[arg-type]
        return super().delete_tag(run_id, key)


@functools.cache
def tracking_store_class(workspaces: bool | None = None) -> type:
    """Hokusai's rules on the same base class MLflow itself would pick."""
    workspaces = MLFLOW_ENABLE_WORKSPACES.get() if workspaces is None else workspaces
    base = WorkspaceAwareSqlAlchemyStore if workspaces else SqlAlchemyStore
    return type("HokusaiTrackingStore",
                (HokusaiTrackingMixin, _PrincipalTagMixin, TrackingStoreHooks, base), {})
