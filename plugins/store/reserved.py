"""Experiment names the server keeps for itself: a plugin's shared experiment
(DSPy's traces, ``HOKUSAI_DSPY_EXPERIMENT``). A key holder who created one first
would own it, and so MANAGE what the server writes there for everyone; a
squatter's experiment would also keep the server from writing there at all.

Inside a server request, only an ``admin`` key may create one, and it is then
created without an owner, like MLflow's Default experiment (the server creates
it the same way when it first needs it). Nobody renames an experiment to such
a name. Plugins add their names to ``Hokusai.reserved_experiments``.
"""

from __future__ import annotations

import flask
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth.scopes import ADMIN


def is_reserved(name: str) -> bool:
    if not flask.has_app_context():  # a client on a hokusai+ URI: no server, no plugins
        return False
    hokusai = flask.current_app.extensions.get("hokusai")
    return hokusai is not None and name in hokusai.reserved_experiments


def check_create(name: str) -> bool:
    """Whether ``name`` is reserved (then the experiment gets no owner); refused
    for a caller without the ``admin`` scope."""
    if not is_reserved(name):
        return False
    principal = current_principal()
    if principal is not None and ADMIN not in principal.scopes:
        raise _refusal(name, "only an admin key, or the server itself, may create it")
    return True


def check_rename(new_name: str) -> None:
    if current_principal() is not None and is_reserved(new_name):
        raise _refusal(new_name, "no experiment may be renamed to it")


def _refusal(name: str, why: str) -> MlflowException:
    return MlflowException(f"The experiment name {name!r} is reserved for the server's own "
                           f"experiment: {why}", PERMISSION_DENIED)
