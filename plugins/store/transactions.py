"""Run Hokusai's owner records inside MLflow's own write transaction (the
registry index needs none: the database's triggers keep it, triggers.py).

MLflow's SQLAlchemy stores open every write with ``self.ManagedSessionMaker(
read_only=False)`` and commit when the block ends. ``SameTransaction`` replaces
that factory with one that, when the store method set up work with ``upkeep``,
runs the work on the same session just before MLflow's commit. If the work
raises, MLflow's own handler rolls everything back: the records and MLflow's
tables can never disagree.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

# work(session, created): ``created`` lists the ORM objects this transaction inserted.
Work = Callable[[object, list], None]

_pending: contextvars.ContextVar[Work | None] = contextvars.ContextVar(
    "hokusai_store_upkeep", default=None)


@contextlib.contextmanager
def upkeep(work: Work):
    """Around one MLflow store call: ``work`` runs in its first write transaction."""
    token = _pending.set(work)
    try:
        yield
    finally:
        _pending.reset(token)


# The ORM objects each pending store call's transaction inserted, collected by
# one listener on every Session (registering a listener per session costs more
# than the index upkeep itself).
_created: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "hokusai_store_created", default=None)


@event.listens_for(Session, "pending_to_persistent")
def _collect(session, instance) -> None:
    created = _created.get()
    if created is not None:
        created.append(instance)


class SameTransaction:
    def __init__(self, make_session):
        self._make_session = make_session

    @contextlib.contextmanager
    def __call__(self, read_only: bool = True):
        work = None if read_only else _pending.get()
        with self._make_session(read_only=read_only) as session:
            if work is None:
                yield session
                return
            _pending.set(None)  # once per store call, even if MLflow nests sessions
            token = _created.set([])
            try:
                yield session
                session.flush()
                work(session, _created.get() or [])  # set just above
            finally:
                _created.reset(token)


def install(store) -> None:
    """Route a store's write sessions through ``SameTransaction``."""
    store.ManagedSessionMaker = SameTransaction(store.ManagedSessionMaker)
