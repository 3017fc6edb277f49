"""What a principal may see in searches: SQL clauses the stores add to MLflow's
own search queries (plugins/store), so that the database filters before it
pages and every page is full; a later page never hides behind a short one.

Visible: experiments and registered models the principal owns, those granted
READ or more, and, when ``HOKUSAI_DEFAULT_PERMISSION`` is READ or more, all
others except those granted ``NO_PERMISSIONS``. Runs follow their experiment,
model versions their registered model. ``admin`` keys and callers outside a
server request (a client on a ``hokusai+`` URI) see everything.
"""

from __future__ import annotations

import contextlib
import contextvars

import sqlalchemy as sa

from mlflow_hokusai.db.schema import model_owners as MO
from mlflow_hokusai.db.schema import owners as O
from mlflow_hokusai.pipeline import current_context, current_principal
from mlflow_hokusai.plugins.auth.scopes import ADMIN
from mlflow_hokusai.plugins.auth.tenants import DEFAULT

_authorizer = None  # set by the auth plugin
_searching: contextvars.ContextVar[bool] = contextvars.ContextVar("hokusai_search",
                                                                  default=False)
READABLE = ("READ", "EDIT", "MANAGE")


def configure(authorizer) -> None:
    global _authorizer
    _authorizer = authorizer


def authorizer():
    """The server's authorizer, for checks made inside the stores (None outside a server)."""
    return _authorizer


@contextlib.contextmanager
def searching():
    """Inside a store's search: the hooks below filter only there."""
    token = _searching.set(True)
    try:
        yield
    finally:
        _searching.reset(token)


def _viewer():
    if not _searching.get() or _authorizer is None:
        return None
    principal = current_principal()
    if principal is None or ADMIN in principal.scopes:
        return None
    return principal


def _workspace() -> str:
    context = current_context.get()
    return context.notes.get("workspace", "") if context else ""


def _split_grants(principal, resource_type: str) -> tuple[list[str], list[str]]:
    assert _authorizer is not None  # searches are filtered once init_app set it
    rows = _authorizer.grants.of_principal(principal.username, resource_type, _workspace())
    readable = [r for r, permission in rows if permission in READABLE]
    hidden = [r for r, permission in rows if permission not in READABLE]
    return readable, hidden


def _clause(column, owned, principal, resource_type: str, as_int: bool):
    readable, hidden = _split_grants(principal, resource_type)
    assert _authorizer is not None
    cast = (lambda ids: [int(i) for i in ids if i.isdigit()]) if as_int else list
    if _authorizer.default in READABLE:
        return sa.or_(column.not_in(cast(hidden)), column.in_(owned)) if hidden else None
    return sa.or_(column.in_(owned), column.in_(cast(readable)))


def experiment_clause(column):
    """For ``SqlExperiment.experiment_id`` (an integer column) or None."""
    principal = _viewer()
    if principal is None:
        return None
    owned = sa.select(sa.cast(O.c.resource_id, sa.Integer)).where(
        O.c.resource_type == "experiment", O.c.owner == principal.username)
    return _clause(column, owned, principal, "experiment", as_int=True)


def model_clause(column):
    """For a registry table's model ``name`` column, or None."""
    principal = _viewer()
    if principal is None:
        return None
    owned = sa.select(MO.c.name).where(MO.c.owner == principal.username,
                                       MO.c.workspace == (_workspace() or DEFAULT))
    return _clause(column, owned, principal, "registered_model", as_int=False)


def hidden(resource_type: str, resource_id) -> bool:
    """Whether the caller may not READ the experiment or registered model: the
    stores' gets answer as if it did not exist (GraphQL and every handler
    reach them, whatever route asked)."""
    context = current_context.get()
    principal = context.principal if context else None
    if principal is None or ADMIN in principal.scopes or _authorizer is None:
        return False
    # Only on read routes: a write route's check already required more than
    # READ, and MLflow's writes call these gets inside their own session (a
    # lookup from there could wait on the pool that session holds).
    if context is None or context.route is None or context.route.scope != "read":
        return False
    level = _authorizer.level(principal.username, resource_type, str(resource_id),
                              context.notes.get("workspace", ""))
    return level not in READABLE


def model_filters(column) -> list:
    """``model_clause`` as a list of filters (empty when nothing is hidden)."""
    clause = model_clause(column)
    return [] if clause is None else [clause]


def _decided_by_cache(principal, experiment_ids) -> list | None:
    """``visible_experiment_ids`` from the levels this worker read within the
    TTL (the permission checks of the requests before filled them), or None when
    one of them is not there: a search then costs no query of its own. The same
    rule as the SQL clause (owner, else grant, else the default), as fresh as
    every other permission decision (the cache TTL)."""
    if not all(str(ident).isdigit() for ident in experiment_ids):
        return None  # what is not an experiment id is left to the SQL path
    workspace = _workspace()
    assert _authorizer is not None
    kept = []
    for ident in experiment_ids:
        level = _authorizer.cached_level(principal.username, "experiment", str(int(ident)),
                                         workspace)
        if level is None:
            return None
        if level in READABLE:
            kept.append(ident)
    return kept


def visible_experiment_ids(session, experiment_ids):
    """The subset of ``experiment_ids`` the viewer may read (search_runs' scope)."""
    from mlflow.store.tracking.dbmodels.models import SqlExperiment

    principal = _viewer()
    if principal is None or not experiment_ids:
        return experiment_ids
    kept = _decided_by_cache(principal, experiment_ids)
    if kept is not None:
        return kept
    clause = experiment_clause(SqlExperiment.experiment_id)
    if clause is None:
        return experiment_ids
    ids = [int(i) for i in experiment_ids if str(i).isdigit()]
    rows = session.execute(sa.select(SqlExperiment.experiment_id).where(
        SqlExperiment.experiment_id.in_(ids), clause)).scalars().all()
    kept = {str(row) for row in rows}
    return [i for i in experiment_ids if str(i) in kept]
