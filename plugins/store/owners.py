"""Who created what: the authenticated principal of the request that wrote it.

Outside a server request (a client using a ``hokusai+`` URI directly) there is
no principal; the owner is then MLflow's own notion of the local user.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

from mlflow.utils.time import get_current_time_millis
from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME as DEFAULT_WORKSPACE

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.db import schema
from mlflow_hokusai.pipeline import current_context, current_principal


@dataclasses.dataclass(frozen=True)
class Owner:
    name: str | None
    key_id: str | None

    @classmethod
    def current(cls) -> Owner:
        if _server_owned.get():
            return cls(None, None)
        principal = current_principal()
        if principal is not None:
            return cls(principal.username, principal.key_id)
        return cls(mlflow_compat.local_user(), None)

    def columns(self) -> dict:
        return {"owner": self.name, "owner_key_id": self.key_id}


def record(session, resource_type: str, resource_id: str, owner: Owner) -> None:
    session.execute(schema.owners.insert().values(
        resource_type=resource_type, resource_id=str(resource_id),
        created_at=get_current_time_millis(), **owner.columns()))


def model_created(session, created: list, name: str, owner: Owner) -> None:
    """Who created the model, in the workspace MLflow put it in (``created``
    holds MLflow's new row). A record left by a model of the same name deleted
    outside the server gives way."""
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModel

    workspace = next((row.workspace for row in created if isinstance(row, SqlRegisteredModel)),
                     DEFAULT_WORKSPACE)
    table = schema.model_owners
    session.execute(table.delete().where(table.c.workspace == workspace, table.c.name == name))
    session.execute(table.insert().values(workspace=workspace, name=name,
                                          created_at=get_current_time_millis(),
                                          **owner.columns()))


def model_changed(session, workspace: str, name: str, new_name: str | None) -> None:
    """A renamed model's record follows it; a deleted one's goes with it."""
    table = schema.model_owners
    where = (table.c.workspace == workspace, table.c.name == name)
    if new_name:
        session.execute(table.update().where(*where).values(name=new_name))
    else:
        session.execute(table.delete().where(*where))


# A version's creator: MLflow's user_id column gets the principal's plain name,
# in the INSERT MLflow sends anyway (MLflow's own create_model_version leaves it
# empty; its clients and UI show it). A trigger copies it into
# hokusai_version_owners (triggers.py); the key id goes there alone, written by
# version_key_id in the same transaction. Nothing is written into MLflow's rows
# afterwards, and they never hold anything but the name.
_server_owned: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hokusai_server_owned", default=False)


@contextlib.contextmanager
def server_owned():
    """What is created inside the block has no owner, like MLflow's Default
    experiment (every principal then has its grant or the default permission),
    even when a request's principal caused it."""
    token = _server_owned.set(True)
    try:
        yield
    finally:
        _server_owned.reset(token)


@contextlib.contextmanager
def as_server():
    """The server's own work inside a request (DSPy's traces in its shared
    experiment): no caller's permissions filter what the stores read, and what
    is created has no owner."""
    token = current_context.set(None)
    try:
        with server_owned():
            yield
    finally:
        current_context.reset(token)


_version_user: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hokusai_version_owner", default=None)
mlflow_compat.supply_model_version_user_id(_version_user.get)


@contextlib.contextmanager
def version_owner(owner: Owner):
    """Model versions constructed inside the block get ``owner``'s name as user_id."""
    token = _version_user.set(owner.name)
    try:
        yield
    finally:
        _version_user.reset(token)


def version_key_id(session, created: list, owner: Owner) -> None:
    """The creator's key id, on the owner row the version trigger just wrote
    (``created`` holds MLflow's new version row)."""
    if not owner.key_id:
        return
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

    table = schema.version_owners
    for row in created:
        if isinstance(row, SqlModelVersion):
            session.execute(table.update().where(
                table.c.workspace == row.workspace, table.c.name == row.name,
                table.c.version == row.version).values(owner_key_id=owner.key_id))
