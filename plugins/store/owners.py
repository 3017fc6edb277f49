"""Who created what: the authenticated principal of the request that wrote it.

Outside a server request (a client using a ``hokusai+`` URI directly) there is
no principal; the owner is then MLflow's own notion of the local user.
"""

from __future__ import annotations

import dataclasses

from mlflow.utils.time import get_current_time_millis

from mlflow_hokusai.db import schema
from mlflow_hokusai.pipeline import current_principal


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
