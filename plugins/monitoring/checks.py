"""Scheduled drift checks: one per registered model, run by the serving
supervisor's elected worker (one per host and database) on its one-second
tick. Each result is stored, exported as Prometheus gauges, and a feature
starting or stopping to drift is written to the audit trail."""

from __future__ import annotations

import json
import logging
import time
import uuid

import sqlalchemy as sa

from mlflow_hokusai.db.schema import drift_checks, drift_results
from mlflow_hokusai.errors import HokusaiError
from mlflow_hokusai.plugins.monitoring import drift, gauges

_logger = logging.getLogger(__name__)
MINUTE_MS = 60_000
KEPT_RESULTS = 100  # per model: older results are deleted as new ones arrive
PRINCIPAL = "hokusai-monitoring"


def now_ms() -> int:
    return int(time.time() * 1000)


class Checks:
    def __init__(self, hokusai):
        self.hokusai = hokusai
        self.engine = hokusai.engine

    # --- configuration ---------------------------------------------------
    def put(self, model_name: str, body, user: str | None) -> dict:
        at = now_ms()
        values = {"version": body.version, "interval_minutes": body.interval_minutes,
                  "period_hours": body.period_hours, "method": body.method,
                  "features": json.dumps(body.features) if body.features else None,
                  "threshold": body.threshold if body.threshold is not None else
                  drift.stats.DEFAULT_THRESHOLD[body.method],
                  "log_to_mlflow": body.log_to_mlflow, "next_run_at": at,
                  "created_by": user, "updated_at": at}
        with self.engine.begin() as connection:
            updated = connection.execute(drift_checks.update().where(
                drift_checks.c.model_name == model_name).values(**values)).rowcount
            if not updated:
                connection.execute(drift_checks.insert().values(model_name=model_name, **values))
        written = self.get(model_name)
        assert written is not None  # written just above
        return written

    def get(self, model_name: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(drift_checks).where(
                drift_checks.c.model_name == model_name)).first()
        return self._out(row) if row else None

    def delete(self, model_name: str) -> bool:
        with self.engine.begin() as connection:
            return bool(connection.execute(drift_checks.delete().where(
                drift_checks.c.model_name == model_name)).rowcount)

    @staticmethod
    def _out(row) -> dict:
        out = dict(row._mapping)
        out["model_id"] = out.pop("model_name")
        out["features"] = json.loads(out["features"]) if out["features"] else None
        return out

    def results(self, model_name: str, limit: int = 10) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(drift_results).where(drift_results.c.model_name == model_name)
                .order_by(drift_results.c.id.desc()).limit(limit)).all()
        return [{"checked_at": r.checked_at, "version": r.model_version,
                 "overall_drift": r.overall_drift, "error": r.error,
                 "report": json.loads(r.report) if r.report else None} for r in rows]

    # --- running ---------------------------------------------------------
    def tick(self) -> None:
        at = now_ms()
        with self.engine.connect() as connection:
            due = connection.execute(sa.select(drift_checks).where(
                drift_checks.c.next_run_at <= at)).all()
        for check in due:
            if not self._claim(check, at):
                continue
            try:
                self.run(check, at)
            except Exception:  # one check's failure (storing, exporting) skips no other
                _logger.exception("Drift check of %s failed", check.model_name)

    def _claim(self, check, at: int) -> bool:
        """Whether this host runs the check. Each host on the database sees it
        due; the one whose update still finds the ``next_run_at`` it read moves
        it on and runs it, the others find it moved."""
        with self.engine.begin() as connection:
            return connection.execute(drift_checks.update().where(
                drift_checks.c.model_name == check.model_name,
                drift_checks.c.next_run_at == check.next_run_at).values(
                next_run_at=at + int(check.interval_minutes * MINUTE_MS))).rowcount == 1

    def run(self, check, at: int) -> dict | None:
        previous = self._previous(check.model_name)
        since = at - int(check.period_hours * drift.HOUR_MS)
        features = json.loads(check.features) if check.features else None
        try:
            result = drift.build(self.hokusai, check.model_name, check.version, features,
                                 check.method, check.threshold, since, at)
        except Exception as exc:  # stored as the result, so it is seen; retried at the next time
            if isinstance(exc, HokusaiError):  # no deployment, no reference data
                reason = str(exc.detail)
            else:  # a bug, an unreadable file
                _logger.exception("Drift report of %s failed", check.model_name)
                reason = f"{type(exc).__name__}: {exc}"
            self._store(check.model_name, None, at, None, reason[:1000], None)
            return None
        report = result.report
        self._store(check.model_name, result.version, at, report["overall_drift"], None, report)
        gauges.export(check.model_name, report)
        self._audit_changes(check.model_name, result.version, previous, report, at)
        if check.log_to_mlflow:
            self._log(result)
        return report

    def _log(self, result) -> None:
        from mlflow_hokusai.plugins.monitoring import history

        try:
            history.log(result, self.hokusai.settings.monitoring_experiment)
        except Exception:  # the check's result is stored either way
            _logger.exception("Drift report of %s not logged to MLflow", result.model_name)

    def _previous(self, model_name: str) -> dict | None:
        for result in self.results(model_name, limit=5):
            if result["report"] is not None:
                return result["report"]
        return None

    def _store(self, model_name, version, at, overall, error, report) -> None:
        with self.engine.begin() as connection:
            connection.execute(drift_results.insert().values(
                model_name=model_name, model_version=version, checked_at=at,
                overall_drift=overall, error=error,
                report=json.dumps(report) if report is not None else None))
            stale = sa.select(drift_results.c.id).where(
                drift_results.c.model_name == model_name).order_by(
                drift_results.c.id.desc()).offset(KEPT_RESULTS)
            ids = connection.execute(stale).scalars().all()
            if ids:
                connection.execute(drift_results.delete().where(drift_results.c.id.in_(ids)))

    def _audit_changes(self, model_name, version, previous: dict | None, report: dict,
                       at: int) -> None:
        before = {f: r["drifted"] for f, r in (previous or {}).get("features", {}).items()}
        for feature, result in report["features"].items():
            now = result["drifted"]
            if now is None or bool(before.get(feature)) == now:
                continue  # untested, or unchanged (never drifted counts as not drifting)
            self._audit(model_name, version, "started" if now else "stopped", feature, at)

    def _audit(self, model_name, version, change: str, feature: str, at: int) -> None:
        _logger.info("Drift %s: %s version %s feature %s", change, model_name, version, feature)
        if self.hokusai.audit is None:
            return
        self.hokusai.audit.record({
            "time": at, "request_id": uuid.uuid4().hex, "principal": PRINCIPAL,
            "action": f"DRIFT_{change.upper()} {feature}"[:300],
            "path": f"/api/v1/monitoring/{model_name}/drift"[:1000], "status": 200,
            "model_name": model_name, "model_version": str(version)})
