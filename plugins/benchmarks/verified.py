"""Which benchmark values are verified: those the registry measured, or a key
with the ``evaluator`` scope set. Each is a row of ``hokusai_verified_values``;
a version's ``benchmark_value`` tag is verified while it equals the latest row
of that version, so a later hand-set value is not (and says so). A verified
improvement is measured in the direction of the token's benchmark, never a
``benchmark_direction`` tag (anyone with EDIT sets those)."""

from __future__ import annotations

import time
from collections import defaultdict

import sqlalchemy as sa

from mlflow_hokusai.db.schema import token_benchmarks as B
from mlflow_hokusai.db.schema import verified_values as W
from mlflow_hokusai.plugins.store import deltaone

MEASURED, EVALUATOR = "measured", "evaluator"


def record(engine, name: str, version: int, value: float, source: str, **facts) -> float | None:
    """Append a verified value; the version's previous one, if any."""
    with engine.begin() as connection:
        previous = _latest(connection, name, [version]).get(version)
        connection.execute(sa.insert(W).values(
            model_name=name, version=version, value=value, source=source,
            recorded_at=int(time.time() * 1000), **facts))
    return previous


def latest(engine, name: str, versions) -> dict[int, float]:
    with engine.connect() as connection:
        return _latest(connection, name, versions)


def _latest(connection, name: str, versions) -> dict[int, float]:
    versions = sorted({int(v) for v in versions if v is not None})
    if not versions:
        return {}
    rows = connection.execute(sa.select(W.c.version, W.c.value).where(
        W.c.model_name == name, W.c.version.in_(versions)).order_by(W.c.id))
    # A Result has keys(): dict(rows) would read it as a mapping of column names.
    return {version: value for version, value in rows}  # noqa: C416 - the last row of each wins


def _token_key(row: dict) -> str | None:
    return row.get("token_key") or row.get("model_token_key")


def benchmark_directions(engine, token_keys) -> dict[str, str]:
    """The direction of each token's benchmark (tokens without one are absent)."""
    keys = sorted({key for key in token_keys if key})
    if not keys:
        return {}
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(B.c.token_key, B.c.direction)
                                       .where(B.c.token_key.in_(keys))).tuples().all())


def annotate(engine, rows: list[dict]) -> list[dict]:
    """Scored index rows (plugins/store/contributions.py) with ``value_verified``
    (the version's value is verified) and ``verified`` (so is the value its
    improvement is measured from: the improvement counts toward totals). A
    verified row's ``direction`` and ``improvement`` are those of its token's
    benchmark (``higher`` when the token has none: values an evaluator key set)."""
    wanted: defaultdict[str, set] = defaultdict(set)
    for row in rows:
        wanted[row["model_name"]] |= {row["version"], row.get("baseline_version")}
    known = {name: latest(engine, name, versions) for name, versions in wanted.items()}
    directions = benchmark_directions(engine, map(_token_key, rows))

    def holds(name, version, value):
        return value is not None and version is not None and known[name].get(version) == value

    out = []
    for row in rows:
        value_ok = holds(row["model_name"], row["version"], row["benchmark_value"])
        base_ok = holds(row["model_name"], row.get("baseline_version"), row["baseline_value"])
        if value_ok and base_ok:
            direction = directions.get(_token_key(row) or "", "higher")
            row = {**row, "direction": direction, "improvement": deltaone.difference(
                row["benchmark_value"], row["baseline_value"], direction)}
        out.append({**row, "value_verified": value_ok,
                    "verified": value_ok and base_ok and row["improvement"] is not None})
    return out


def verified_total(rows: list[dict]) -> float:
    """The rounded sum (plugins/store/deltaone.py) of the improvements that count."""
    return deltaone.total(row["improvement"] for row in rows if row["verified"])
