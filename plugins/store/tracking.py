"""The tracking store: MLflow's SQLAlchemy store, with Hokusai's rules on top."""

from __future__ import annotations

import functools

from mlflow.entities import RunTag
from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.tracking.sqlalchemy_workspace_store import WorkspaceAwareSqlAlchemyStore

from mlflow.utils.mlflow_tags import MLFLOW_USER

from mlflow_hokusai.pipeline import current_principal


class HokusaiTrackingMixin:
    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        # Inside the server the run's user is who authenticated, not what the
        # client claims (MLflow's client sends the local OS user, as user_id and
        # as the mlflow.user tag the UI shows).
        principal = current_principal()
        if principal is not None:
            user_id = principal.username
            tags = [tag for tag in tags or [] if tag.key != MLFLOW_USER] + \
                [RunTag(MLFLOW_USER, user_id)]
        return super().create_run(experiment_id, user_id, start_time, tags, run_name)


@functools.cache
def tracking_store_class(workspaces: bool | None = None) -> type:
    """Hokusai's rules on the same base class MLflow itself would pick."""
    workspaces = MLFLOW_ENABLE_WORKSPACES.get() if workspaces is None else workspaces
    base = WorkspaceAwareSqlAlchemyStore if workspaces else SqlAlchemyStore
    return type("HokusaiTrackingStore", (HokusaiTrackingMixin, base), {})
