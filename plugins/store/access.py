"""Reading the index through the server's own stores (same pools, same database
as MLflow's handlers use)."""

from __future__ import annotations

from typing import Callable, TypeVar

from mlflow_hokusai.errors import Unsupported

T = TypeVar("T")


def read(query: Callable[[object], T], *, registry: bool = True) -> T:
    """``query(session)`` on the registry (or tracking) store's read session.
    Raise HokusaiErrors outside: MLflow's session wrapper turns any exception
    into its own."""
    from mlflow.server import handlers

    store = handlers._get_model_registry_store() if registry else handlers._get_tracking_store()
    if not getattr(store, "hokusai_index", False):
        raise Unsupported("This needs a SQL backend store (Hokusai's store plugins)")
    with store.ManagedSessionMaker() as session:
        return query(session)
