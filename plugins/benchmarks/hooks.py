"""What a written ``benchmark_value`` tag means for verification: a key with
the ``evaluator`` scope vouches for it (a verified value, recorded as such);
anyone else's value replacing a verified one is recorded on the ledger as a
superseded value (it shows as ``verified: false`` from then on)."""

from __future__ import annotations

import logging
from typing import Any

import flask

from mlflow_hokusai import signals
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth.scopes import vouches
from mlflow_hokusai.plugins.benchmarks import measure, verified
from mlflow_hokusai.plugins.store import reader
from mlflow_hokusai.plugins.store.access import read

_logger = logging.getLogger(__name__)


def _token_id(name: str, version: int) -> str | None:
    row = read(lambda session: reader.version(session, name, version))
    return row.get("token_key") if row else None


def on_tag_set(store, *, model_name: str, version: int, value: float) -> None:
    if measure.measuring.get() or not flask.has_app_context():
        return  # the registry's own measurement, or a store used outside the server
    hokusai = flask.current_app.extensions.get("hokusai")
    principal = current_principal()
    if hokusai is None or principal is None:
        return
    event: dict[str, Any] = {"token_id": _token_id(model_name, version), "model_name": model_name,
             "version": version, "principal": principal.username}
    if vouches(principal.scopes):
        previous = verified.record(hokusai.engine, model_name, version, value,
                                   verified.EVALUATOR, principal=principal.username)
        signals.contribution_recorded.send(
            "hokusai.benchmarks", event="benchmark_measured", **event,
            data={"value": value, "source": verified.EVALUATOR, "key": principal.label,
                  "previous_value": previous})
        return
    previous = verified.latest(hokusai.engine, model_name, [version]).get(version)
    if previous is not None and previous != value:
        signals.contribution_recorded.send(
            "hokusai.benchmarks", event="value_superseded", **event,
            data={"old_value": previous, "new_value": value, "verified": False})
