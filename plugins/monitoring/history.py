"""Drift reports as runs of a monitoring experiment, so their history is
browsable in the MLflow UI: per-feature statistic, p-value and drifted flag as
metrics, the verdict as tags, the HTML page as an artifact. Written through
the server's own stores (no HTTP client, no credentials of its own)."""

from __future__ import annotations

import os
import tempfile
import time

from mlflow.entities import Metric, Param, RunStatus, RunTag

from mlflow_hokusai.plugins.models import artifacts
from mlflow_hokusai.plugins.models.registry import tracking_store
from mlflow_hokusai.plugins.monitoring import plots
from mlflow_hokusai.plugins.store import reserved
from mlflow_hokusai.plugins.store.owners import as_server


def log(result, experiment: str) -> str:
    """The report as a run of the server's experiment ``experiment`` (a
    reserved name: no key holder owns it, nor the runs the server logs)."""
    with as_server():
        return _log(result, experiment)


def _log(result, experiment: str) -> str:
    store = tracking_store()
    at = int(time.time() * 1000)
    report = result.report
    run = store.create_run(reserved.server_experiment(store, experiment),
                           user_id="hokusai-monitoring", start_time=at, tags=[],
                           run_name=f"drift-{result.model_name}")
    run_id = run.info.run_id
    metrics = [Metric("features_drifted", report["features_drifted"], at, 0),
               Metric("features_checked", report["features_checked"], at, 0)]
    for feature, item in report["features"].items():
        safe = "".join(c if c.isalnum() or c in "_-. /" else "_" for c in feature)
        for key in ("statistic", "p_value", "p_value_adjusted"):
            if item[key] is not None:
                metrics.append(Metric(f"{safe}.{key}", item[key], at, 0))
        if item["drifted"] is not None:
            metrics.append(Metric(f"{safe}.drifted", float(item["drifted"]), at, 0))
    store.log_batch(run_id, metrics=metrics, params=[
        Param("method", report["method"]), Param("threshold", str(report["threshold"])),
        Param("reference_digest", report["reference"]["digest"])], tags=[
        RunTag("hokusai.model", result.model_name),
        RunTag("hokusai.model_version", str(result.version)),
        RunTag("hokusai.overall_drift", str(report["overall_drift"]))])
    repo, base = artifacts.repository(run.info.artifact_uri)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "drift_report.html")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(plots.render(result))
        repo.log_artifact(path, base or None)
    store.update_run_info(run_id, RunStatus.FINISHED, at, None)
    return run_id
