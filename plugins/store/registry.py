"""The model registry store under the hokusai+ schemes.

Today it is MLflow's own SQLAlchemy registry (the base MLflow would pick);
the Hokusai indexes (tokens, benchmarks, contributions, lineage) will be kept
by a mixin here, in the same transactions as MLflow's writes.
"""

from __future__ import annotations

from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.sqlalchemy_workspace_store import WorkspaceAwareSqlAlchemyStore


def registry_store_class(workspaces: bool | None = None) -> type:
    workspaces = MLFLOW_ENABLE_WORKSPACES.get() if workspaces is None else workspaces
    return WorkspaceAwareSqlAlchemyStore if workspaces else SqlAlchemyStore
