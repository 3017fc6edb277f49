"""Who created what: the authenticated principal of the request that wrote it.

Outside a server request (a client using a ``hokusai+`` URI directly) there is
no principal; the owner is then MLflow's own notion of the local user.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

from mlflow.store.model_registry.dbmodels.models import SqlModelVersion
from mlflow.utils.time import get_current_time_millis
from sqlalchemy import event

from mlflow_hokusai.db import schema
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.store.triggers import OWNER_SEPARATOR


@dataclasses.dataclass(frozen=True)
class Owner:
    name: str | None
    key_id: str | None

    @classmethod
    def current(cls) -> "Owner":
        principal = current_principal()
        if principal is not None:
            return cls(principal.username, principal.key_id)
        from mlflow.tracking.context.default_context import _get_user

        return cls(_get_user(), None)

    def columns(self) -> dict:
        return {"owner": self.name, "owner_key_id": self.key_id}


def record(session, resource_type: str, resource_id: str, owner: Owner) -> None:
    session.execute(schema.owners.insert().values(
        resource_type=resource_type, resource_id=str(resource_id),
        created_at=get_current_time_millis(), **owner.columns()))


def model_created(session, name: str, owner: Owner) -> None:
    """The model's index row is the trigger's; who created it only Python knows."""
    session.execute(schema.registered_models.update()
                    .where(schema.registered_models.c.name == name).values(**owner.columns()))


# A version's creator travels in the INSERT MLflow sends anyway: its user_id
# column gets "name<separator>key id", which the version trigger splits, keeping
# only the name there (triggers.py). Recording it separately cost a round trip.
_version_stamp: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hokusai_version_owner", default=None)
_USER_ID_LENGTH = SqlModelVersion.user_id.type.length


@contextlib.contextmanager
def version_owner(owner: Owner):
    """Model versions constructed inside the block are stamped with ``owner``."""
    stamp = owner.name
    if owner.name is not None and owner.key_id:
        stamp = f"{owner.name}{OWNER_SEPARATOR}{owner.key_id}"
        if len(stamp) > _USER_ID_LENGTH:  # too long to carry the key id: keep the name
            stamp = owner.name
    token = _version_stamp.set(stamp)
    try:
        yield
    finally:
        _version_stamp.reset(token)


@event.listens_for(SqlModelVersion, "init")
def _stamp(target, args, kwargs) -> None:
    stamp = _version_stamp.get()
    if stamp is not None:
        kwargs["user_id"] = stamp
