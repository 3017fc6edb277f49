"""One drift report of a served model: its deployment and version, the
reference data, the recorded inputs of the window, the statistics. Shared by
the drift route and the scheduled checks."""

from __future__ import annotations

import dataclasses
import datetime

import pandas as pd

from mlflow_hokusai.plugins.monitoring import current, reference, reports, stats
from mlflow_hokusai.plugins.serving import resolve

HOUR_MS = 3_600_000
DEFAULT_PERIOD_HOURS = 24.0


@dataclasses.dataclass
class Drift:
    model_name: str
    version: int
    report: dict
    reference: pd.DataFrame
    current: pd.DataFrame
    columns: list[dict] | None

    def categorical(self, feature: str) -> bool:
        return reports.categorical(feature, self.reference, self.columns)


def millis(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


def window_ms(since, until, period_hours, now_ms: int) -> tuple[int, int]:
    until_ms = millis(until) if until is not None else now_ms
    if since is not None:
        return millis(since), until_ms
    return until_ms - int((period_hours or DEFAULT_PERIOD_HOURS) * HOUR_MS), until_ms


def build(hokusai, model_name: str, version_ref: str | None, features: list[str] | None,
          method: str, threshold: float | None, since_ms: int, until_ms: int) -> Drift:
    settings = hokusai.settings
    row = resolve.deployment_for(hokusai.serving.store, model_name, version_ref)  # 404s
    version = row.resolved_version or row.version
    ref = reference.resolve(model_name, version, row.reference_dataset, settings)
    frame, recorded = current.window(hokusai.engine, model_name, version, since_ms, until_ms,
                                     settings.monitoring_max_rows)
    chosen = reports.choose_features(features, ref.frame, row.columns)
    threshold = stats.DEFAULT_THRESHOLD[method] if threshold is None else threshold
    report = reports.drift(ref.frame, frame, chosen, method, threshold,
                           settings.monitoring_min_samples, row.columns)
    report.update({"model_id": model_name, "version": version, "deployment_id": row.id,
                   "reference": ref.describe(), "recorded_in_window": recorded,
                   "window": {"since": since_ms, "until": until_ms}})
    return Drift(model_name, version, report, ref.frame, frame, row.columns)
