"""Experiment names the server keeps for itself: a plugin's shared experiment
(DSPy's traces, ``HOKUSAI_DSPY_EXPERIMENT``; drift reports,
``HOKUSAI_MONITORING_EXPERIMENT``). A key holder who created one first would own
it, and so MANAGE what the server writes there for everyone.

Inside a server request, only an ``admin`` key may create one, and it is then
created without an owner, like MLflow's Default experiment; the server creates
it the same way when it first needs it (``server_experiment``). Nobody renames an
experiment to such a name. Plugins add their names to
``Hokusai.reserved_experiments``.
"""

from __future__ import annotations

import flask
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth.scopes import ADMIN
from mlflow_hokusai.plugins.store import reader


class Unusable(Exception):
    """The server's experiment exists but is not the server's to write to."""


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


def server_experiment(store, name: str) -> str:
    """The id of the server's experiment ``name``, created without an owner
    when missing; call it inside ``owners.as_server()`` (no caller's
    permissions, the caller's MLflow workspace: each workspace has its own).
    Looked up on every call, so that a rename or a deletion is seen at once.
    ``Unusable`` when it is deleted, or when a caller owns it (created before
    the name was reserved: that caller would MANAGE all it holds)."""
    experiment = store.get_experiment_by_name(name)
    if experiment is None:
        try:
            return store.create_experiment(name)
        except MlflowException:  # another server worker created it just now
            experiment = store.get_experiment_by_name(name)
            if experiment is None:
                raise
    where = f"Experiment {name!r} ({experiment.experiment_id})"
    if experiment.lifecycle_stage != "active":
        raise Unusable(f"{where} is deleted: restore it, or rename it away, with an admin key")
    with store.ManagedSessionMaker() as session:
        row = reader.owner(session, "experiment", experiment.experiment_id)
    if row is not None and (row["owner"] is not None or row["owner_key_id"] is not None):
        raise Unusable(
            f"{where} is owned by {row['owner']!r} (key {row['owner_key_id']}), not by the "
            "server: rename it away with an admin key (experiments/update) and the server "
            "creates a new one without an owner (deleting only its owner row would keep "
            "the grants that owner made)")
    return experiment.experiment_id
