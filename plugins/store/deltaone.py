"""Improvement as answers state it: the raw metric difference rounded to
``PLACES`` decimal places, and DeltaOne, the same difference in percentage
points (x 100, ``PLACES - 2`` places). Computed in decimal from the values'
shortest decimal spelling, so 0.85 - 0.80 answers 0.05, never
0.050000000000000044, and sums carry no float noise either."""

from __future__ import annotations

from decimal import Decimal

PLACES = 10
_QUANTUM = Decimal(1).scaleb(-PLACES)
_POINTS = Decimal(1).scaleb(-(PLACES - 2))


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def difference(value: float | None, baseline: float | None, direction: str | None):
    """value - baseline (baseline - value when lower is better), rounded."""
    if value is None or baseline is None:
        return None
    delta = _decimal(value) - _decimal(baseline)
    return float((-delta if direction == "lower" else delta).quantize(_QUANTUM))


def points(improvement: float | None):
    """DeltaOne: an improvement in percentage points."""
    if improvement is None:
        return None
    return float((_decimal(improvement) * 100).quantize(_POINTS))


def total(improvements) -> float:
    """The rounded sum of improvements (None counts as 0)."""
    return float(sum((_decimal(value) for value in improvements if value is not None),
                     Decimal(0)).quantize(_QUANTUM))
