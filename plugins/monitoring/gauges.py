"""Prometheus gauges of the scheduled drift checks, exported by the metrics
plugin's ``/metrics`` (prometheus_client's multiprocess mode: imported after
plugins.metrics chose the directory). ``mostrecent``: the supervisor's worker
runs the checks, and its latest value is the one that counts."""

from __future__ import annotations

from prometheus_client import Gauge

STATISTIC = Gauge("hokusai_feature_drift_statistic",
                  "Drift statistic (KS, chi-square or PSI) of a feature's recorded inputs "
                  "against the reference, at the latest scheduled check", ["model", "feature"],
                  multiprocess_mode="mostrecent")
DRIFTED = Gauge("hokusai_feature_drifted",
                "1 if the feature drifted at the latest scheduled check, 0 if not, "
                "-1 if there were too few samples to test", ["model", "feature"],
                multiprocess_mode="mostrecent")
MODEL_DRIFTED = Gauge("hokusai_model_drifted",
                      "1 if any feature drifted at the latest scheduled check, 0 if none, "
                      "-1 if none could be tested", ["model"], multiprocess_mode="mostrecent")


def _state(drifted: bool | None) -> int:
    return -1 if drifted is None else int(drifted)


def export(model_name: str, report: dict) -> None:
    for feature, result in report["features"].items():
        if result["statistic"] is not None:
            STATISTIC.labels(model_name, feature).set(result["statistic"])
        DRIFTED.labels(model_name, feature).set(_state(result["drifted"]))
    MODEL_DRIFTED.labels(model_name).set(_state(report["overall_drift"]))
