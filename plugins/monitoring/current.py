"""The current data of a drift report: the sampled prediction inputs
(``hokusai_prediction_samples``, written by plugins.serving) of one version in
a time window.

Bounded: a window holding more than ``max_rows`` samples is read as a sample
of about ``max_rows`` rows chosen by the database (a million rows cost one
indexed count and one filtered scan, never a million parsed JSON documents).
Rows are kept by a pseudo-random function of their id (a Lehmer generator's
step, ``id * 48271 mod 2^31-1``), not every k-th id: traffic with a period
(a client alternating two kinds of record) would alias with every k-th row
and hide a drift in half of it. Deterministic: the same window, the same rows."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa

from mlflow_hokusai.db.schema import prediction_samples as samples

_MULTIPLIER, _MODULUS = 48271, 2**31 - 1  # MINSTD; ids below 2^43 stay within a BIGINT


def window(engine, model_name: str, version: int, since_ms: int, until_ms: int,
           max_rows: int) -> tuple[pd.DataFrame, int]:
    """(inputs as a frame, how many samples the window holds)."""
    where = [samples.c.model_name == model_name, samples.c.model_version == version,
             samples.c.sampled_at >= since_ms, samples.c.sampled_at < until_ms]
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        if total > max_rows:
            cutoff = int(_MODULUS * max_rows / total)
            where.append((samples.c.id * _MULTIPLIER) % _MODULUS < cutoff)
        rows = connection.execute(sa.select(samples.c.inputs).where(*where)
                                  .order_by(samples.c.id).limit(max_rows)).scalars().all()
    return pd.DataFrame.from_records([r for r in _parse(rows) if isinstance(r, dict)]), total


def _parse(rows: list[str]) -> list:
    try:  # one document: a third faster than one json.loads per row
        return json.loads("[" + ",".join(rows) + "]")
    except ValueError:
        return [_one(text) for text in rows]


def _one(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None  # a row no writer of ours produced
