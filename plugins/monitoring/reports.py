"""A drift report: which features, against which reference, over which window,
and the verdict. Pure: frames in, a JSON-able dict out (views and the
scheduled checks fetch the frames)."""

from __future__ import annotations

import pandas as pd

from mlflow_hokusai.errors import ValidationFailed
from mlflow_hokusai.plugins.monitoring import stats

CATEGORICAL_TYPES = frozenset({"string", "boolean", "binary"})


def categorical(name: str, reference: pd.DataFrame, columns: list[dict] | None) -> bool:
    """By the signature's type when there is one, else by the reference's dtype."""
    for column in columns or ():
        if column["name"] == name:
            return column["type"] in CATEGORICAL_TYPES
    return stats.is_categorical(reference[name])


def choose_features(requested: list[str] | None, reference: pd.DataFrame,
                    columns: list[dict] | None) -> list[str]:
    """The requested features (each must be in the reference), else the
    signature's inputs, else every reference column."""
    if requested:
        missing = [f for f in requested if f not in reference.columns]
        if missing:
            raise ValidationFailed([{"loc": ["query", "features"], "type": "value_error",
                                     "msg": f"Not in the reference data: {', '.join(missing)}"}])
        return list(dict.fromkeys(requested))
    if columns:
        return [c["name"] for c in columns if c["name"] in reference.columns]
    return list(reference.columns)


def drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], method: str,
          threshold: float, min_samples: int, columns: list[dict] | None = None) -> dict:
    results = []
    for name in features:
        current_values = current[name] if name in current.columns else pd.Series([], dtype=float)
        results.append(stats.feature(name, reference[name], current_values, method,
                                     categorical(name, reference, columns), min_samples))
    stats.decide(results, method, threshold)
    tested = [r for r in results if r.status == "tested"]
    drifted = [r.feature for r in tested if r.drifted]
    return {
        "method": method, "threshold": threshold,
        "correction": None if method == stats.PSI else "holm",
        "min_samples": min_samples,
        "reference_size": len(reference), "current_size": len(current),
        # None, not False, when nothing could be tested: no data is not "no drift".
        "overall_drift": bool(drifted) if tested else None,
        "status": "tested" if tested else "insufficient_data",
        "features_checked": len(tested), "features_drifted": len(drifted),
        "drifted_features": drifted,
        "insufficient_features": [r.feature for r in results if r.status != "tested"],
        "features": {r.feature: r.to_dict() for r in results},
    }
