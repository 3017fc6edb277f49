"""The triggers' refusals (triggers.py) as MLflow errors that say what is wrong.

A trigger raises ``hokusai:<code>`` inside MLflow's statement. An engine
``handle_error`` hook turns that into ``Refused`` at once: MLflow's
``create_model_version`` retries IntegrityErrors (a concurrent version number)
and would otherwise swallow it. The store call then explains the refusal with
the names it was given and, for a token, which model holds it.
"""

from __future__ import annotations

import contextlib
import re

import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS
from sqlalchemy import event

from mlflow_hokusai.db.schema import tokens as T
from mlflow_hokusai.plugins.store import tags
from mlflow_hokusai.plugins.store.sql import first

PREFIX = "hokusai:"  # a refusal's whole message: this prefix and a code
_REFUSAL = re.compile(re.escape(PREFIX) + r"([a-z_]+)")


def refused_code(error) -> str | None:
    """The code of a trigger's refusal, if ``error`` (a DBAPI error) is one: its
    whole primary message, so a quoted value can't pass for one."""
    message = getattr(getattr(error, "diag", None), "message_primary", None) or str(error)
    match = _REFUSAL.fullmatch(message.strip())
    return match.group(1) if match else None


class Refused(MlflowException):
    def __init__(self, code: str):
        super().__init__(f"Refused by the Hokusai registry index ({code})",
                         INVALID_PARAMETER_VALUE)
        self.code = code


class NameTaken(MlflowException):
    """The model name is another workspace's (code ``model_name_taken``). Its own
    class: callers that treat RESOURCE_ALREADY_EXISTS as "exists here" must not."""

    def __init__(self, name: str):
        super().__init__(
            f"Registered model name '{name}' is taken in another workspace: on a Hokusai "
            "server a model's name is unique across workspaces (its token and lineage are "
            "keyed by it)", RESOURCE_ALREADY_EXISTS)


def _translate(context) -> None:
    code = refused_code(context.original_exception)
    if code is not None:
        raise Refused(code) from context.original_exception


def listen(engine) -> None:
    if not event.contains(engine, "handle_error", _translate):
        event.listen(engine, "handle_error", _translate)


def _explain(session, code: str, name: str, version_tags: dict) -> MlflowException:
    if code == "model_name_taken":
        return NameTaken(name)
    if code == "parent_version":
        return tags.invalid(f"Invalid {tags.PARENT_VERSION} {version_tags.get(tags.PARENT_VERSION)}"
                            f": must be an existing earlier version of model '{name}'")
    token_id = version_tags.get(tags.TOKEN_ID)
    holder = first(session, sa.select(T.c.model_name).where(T.c.token_key == token_id.lower())) \
        if token_id else None
    if code == "token_bound" and holder is not None and holder["model_name"] != name:
        return MlflowException(f"Token '{token_id}' is already bound to registered model "
                               f"'{holder['model_name']}'", RESOURCE_ALREADY_EXISTS)
    held = first(session, sa.select(T.c.token_id).where(T.c.model_name == name))
    if held is None:  # the other binding went away since: say what was refused
        return MlflowException(f"Token '{token_id}' could not be bound to registered model "
                               f"'{name}'; try again", RESOURCE_ALREADY_EXISTS)
    return MlflowException(f"Registered model '{name}' is already bound to token "
                           f"'{held['token_id']}'; a model carries one token",
                           RESOURCE_ALREADY_EXISTS)


@contextlib.contextmanager
def explained(store, name: str, version_tags: dict | None = None):
    """Around a store call writing ``version_tags`` (parsed) on model ``name``, or
    creating or renaming to ``name``."""
    try:
        yield
    except Refused as refusal:
        with store.ManagedSessionMaker() as session:
            error = _explain(session, refusal.code, name, version_tags or {})
        raise error from None
