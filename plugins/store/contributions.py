"""A contribution's numbers, derived when read from the indexed facts.

The baseline of version v is the benchmark value of the latest earlier version
of the same model that has one, else the token's baseline: the value of the
earliest live version carrying the token that has a value (``token_baseline``).
Both are read from what MLflow's rows hold now, never from when a tag was set,
so the live index and its rebuild (backfill.py) give the same answers. Higher
is better unless the version (else the model) is tagged
``benchmark_direction=lower``; improvement = value - baseline, sign flipped for
lower-is-better, in decimal and rounded (deltaone.py). (These tags are anyone's
with EDIT: for verified values, plugins/benchmarks/verified.py rescores with the
token's benchmark direction.) Deriving these on read
costs one indexed lookup per version and can never go stale when an earlier
version changes.
"""

from __future__ import annotations

import sqlalchemy as sa

from mlflow_hokusai.db.schema import model_versions as V
from mlflow_hokusai.db.schema import registered_models as M
from mlflow_hokusai.db.schema import tokens as T
from mlflow_hokusai.plugins.store import deltaone
from mlflow_hokusai.plugins.store.sql import first


def improvement(value: float | None, baseline: float | None, direction: str | None):
    return deltaone.difference(value, baseline, direction)


def token_baseline(session, name: str, token_key: str):
    """The version a model's token is measured from: its earliest live version
    carrying the token with a benchmark value, else the earliest carrying it.
    (Two walks of the model's versions in order, each stopping at its first hit.)"""
    query = sa.select(V).where(V.c.model_name == name, V.c.token_key == token_key) \
        .order_by(V.c.version).limit(1)
    return first(session, query.where(V.c.benchmark_value.is_not(None))) \
        or first(session, query)


class Scorer:
    """Scores rows of ``hokusai_model_versions`` during one read, remembering
    each model's direction and token baseline."""

    def __init__(self, session):
        self.session = session
        self._models: dict[str, tuple[str | None, tuple | None, str | None]] = {}

    def _model(self, name: str) -> tuple[str | None, tuple | None, str | None]:
        if name not in self._models:
            row = first(self.session, sa.select(M.c.benchmark_direction, T.c.token_key)
                        .select_from(M.outerjoin(T, T.c.model_name == M.c.name))
                        .where(M.c.name == name))
            baseline = token_baseline(self.session, name, row["token_key"]) \
                if row and row["token_key"] else None
            self._models[name] = (row["benchmark_direction"] if row else None,
                                  (baseline["version"], baseline["benchmark_value"])
                                  if baseline else None,
                                  row["token_key"] if row else None)
        return self._models[name]

    def _earlier_value(self, name: str, version: int) -> tuple | None:
        """(version, value) of the latest earlier version with a value."""
        return self.session.execute(
            sa.select(V.c.version, V.c.benchmark_value).where(
                V.c.model_name == name, V.c.version < version, V.c.benchmark_value.is_not(None))
            .order_by(V.c.version.desc()).limit(1)).first()

    def _scored(self, row, earlier: tuple | None) -> dict:
        direction, token_baseline, token_key = self._model(row["model_name"])
        direction = row["benchmark_direction"] or direction or "higher"
        base_version, baseline = (token_baseline if earlier is None else earlier) or (None, None)
        return {**row, "direction": direction, "baseline_value": baseline,
                "baseline_version": base_version, "model_token_key": token_key,
                "improvement": improvement(row["benchmark_value"], baseline, direction)}

    def score(self, row) -> dict:
        """One row with ``direction``, ``baseline_value``, ``improvement`` and
        ``model_token_key`` (the token its model is bound to, if any)."""
        return self._scored(row, self._earlier_value(row["model_name"], row["version"]))

    def history(self, rows) -> list[dict]:
        """Consecutive versions of one model, oldest first, scored in one pass."""
        scored, earlier = [], None
        for index, row in enumerate(rows):
            if index == 0:
                earlier = self._earlier_value(row["model_name"], row["version"])
            scored.append(self._scored(row, earlier))
            if row["benchmark_value"] is not None:
                earlier = (row["version"], row["benchmark_value"])
        return scored
