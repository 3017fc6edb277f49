"""Comparing two versions by their source runs' metrics, and one version's
metrics grouped by phase."""

from __future__ import annotations

import re

from mlflow_hokusai.plugins.models.registry import get_version, tracking_store

# Version tags of the tokenized-registration convention (issue 6).
BENCHMARK_METRIC_TAG = "benchmark_metric"
BENCHMARK_DIRECTION_TAG = "benchmark_direction"  # optional: "higher" or "lower"
TRAINING_PREFIXES = ("train_", "training_")
VALIDATION_PREFIXES = ("val_", "validation_")
_LOWER = {"loss", "error", "rmse", "mse", "mae", "mape", "logloss", "perplexity", "latency",
          "wer", "cer"}
_HIGHER = {"accuracy", "acc", "precision", "recall", "f1", "auc", "roc", "r2", "score", "map",
           "bleu", "rouge", "iou", "dice"}


def direction(metric: str) -> str | None:
    """``higher`` or ``lower`` is better, judged from the name's words
    (``val_loss`` -> lower, ``f1_score`` -> higher), or None when unknown."""
    words = set(re.split(r"[^a-z0-9]+", metric.lower().replace("log_loss", "logloss")))
    lower, higher = bool(words & _LOWER), bool(words & _HIGHER)
    if lower != higher:
        return "lower" if lower else "higher"
    return None


def run_metrics(run_id: str | None) -> dict[str, float]:
    return dict(tracking_store().get_run(run_id).data.metrics) if run_id else {}


def _side(name: str, version: int):
    mv = get_version(name, version)
    return mv, {"name": mv.name, "version": int(mv.version), "run_id": mv.run_id or None,
                "metrics": run_metrics(mv.run_id)}


def _better(value1: float, value2: float, way: str) -> int:
    """1 or 2 for the better side, 0 for a tie."""
    if value1 == value2:
        return 0
    return 2 if (value2 > value1) == (way == "higher") else 1


def _benchmark(versions) -> tuple[str | None, str | None]:
    for mv in versions:
        metric = (mv.tags or {}).get(BENCHMARK_METRIC_TAG)
        if metric:
            stated = (mv.tags or {}).get(BENCHMARK_DIRECTION_TAG)
            return metric, stated if stated in ("higher", "lower") else direction(metric)
    return None, None


def recommend(refs, versions, metrics1, metrics2) -> dict:
    """Rule 1 ``benchmark_metric``: the versions' benchmark metric (tag), when
    both runs have it and its direction is known. Rule 2
    ``majority_of_known_metrics``: the side better on more of the shared metrics
    whose direction the name tells. Otherwise ``tie`` or ``no_basis``."""
    shared = sorted(set(metrics1) & set(metrics2))
    metric, way = _benchmark(versions)
    if metric in shared and way:
        winner = _better(metrics1[metric], metrics2[metric], way)
        if winner:
            return {"model": refs[winner - 1], "rule": "benchmark_metric", "metric": metric,
                    "direction": way, "reason": f"{way} {metric} is better"}
        return {"model": None, "rule": "tie", "metric": metric, "direction": way,
                "reason": f"equal {metric}"}
    judged = [(m, sense) for m in shared if (sense := direction(m))]
    wins = [_better(metrics1[m], metrics2[m], w) for m, w in judged]
    if not judged:
        return {"model": None, "rule": "no_basis", "metric": None, "direction": None,
                "reason": "no shared metric with a known direction"}
    if wins.count(1) == wins.count(2):
        return {"model": None, "rule": "tie", "metric": None, "direction": None,
                "reason": f"each better on {wins.count(1)} of {len(judged)} metrics"}
    winner = 1 if wins.count(1) > wins.count(2) else 2
    return {"model": refs[winner - 1], "rule": "majority_of_known_metrics", "metric": None,
            "direction": None,
            "reason": f"better on {wins.count(winner)} of {len(judged)} shared metrics"}


def compare(ref1: tuple[str, int], ref2: tuple[str, int]) -> dict:
    mv1, side1 = _side(*ref1)
    mv2, side2 = _side(*ref2)
    m1, m2 = side1["metrics"], side2["metrics"]
    delta = {k: m2[k] - m1[k] for k in sorted(set(m1) & set(m2))}
    refs = [f"{side1['name']}:{side1['version']}", f"{side2['name']}:{side2['version']}"]
    detail = recommend(refs, (mv1, mv2), m1, m2)
    return {"model1": side1, "model2": side2, "delta": delta,
            "recommendation": in_words(detail, side1, side2),
            "recommendation_detail": detail}


def in_words(detail: dict, side1: dict, side2: dict) -> str:
    """The API reference's string ("Use version 2"); the rule and its reason
    stay in ``recommendation_detail``."""
    if detail["model"] is None:
        return f"No recommendation: {detail['reason']}"
    side = side1 if detail["model"] == f"{side1['name']}:{side1['version']}" else side2
    same_model = side1["name"] == side2["name"]
    which = f"version {side['version']}" if same_model else detail["model"]
    return f"Use {which} ({detail['reason']})"


def by_phase(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    phases: dict[str, dict[str, float]] = {
        "training_metrics": {}, "validation_metrics": {}, "other_metrics": {}}
    for name, value in sorted(metrics.items()):
        if name.startswith(TRAINING_PREFIXES):
            phases["training_metrics"][name] = value
        elif name.startswith(VALIDATION_PREFIXES):
            phases["validation_metrics"][name] = value
        else:
            phases["other_metrics"][name] = value
    return phases
