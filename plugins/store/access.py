"""Reading the index through the server's own stores (same pools, same database
as MLflow's handlers use)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.errors import Unsupported

T = TypeVar("T")


def read(query: Callable[[Session], T], *, registry: bool = True) -> T:
    """``query(session)`` on the registry (or tracking) store's read session.
    Raise HokusaiErrors outside: MLflow's session wrapper turns any exception
    into its own."""
    store = mlflow_compat.server_registry_store() if registry else \
        mlflow_compat.server_tracking_store()
    if not getattr(store, "hokusai_index", False):
        raise Unsupported("This needs a SQL backend store (Hokusai's store plugins)")
    with store.ManagedSessionMaker() as session:
        return query(session)
