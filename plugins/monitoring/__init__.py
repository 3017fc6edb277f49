"""Monitoring served models (issue 18): drift of the recorded prediction
inputs against reference data, performance and accuracy from posted ground
truth, scheduled checks exported to Prometheus and the audit trail, and
pictures of drift.

Modules: ``stats`` (the tests and the correction), ``reports`` (a drift report
from two frames), ``reference`` and ``current`` (the two frames), ``drift``
(the two together for one model), ``plots`` (PNG and HTML), ``outcomes``
(every prediction request, with feedback), ``performance``, ``checks`` (the
scheduled ones), ``gauges`` (Prometheus), ``history`` (reports as MLflow
runs), ``schemas`` and ``views``.
"""

from __future__ import annotations

import dataclasses
import time

# Its checks run on the serving supervisor's ticks and export gauges through the
# metrics plugin's multiprocess directory (set before prometheus_client loads).
NEEDS = ("metrics", "serving")

# Routes on one registered model, named by <model_id>; feedback is judged
# again in its view (the predictor, or EDIT).
ROUTES = (("GET", "/v1/monitoring/<model_id>/drift", "READ"),
          ("GET", "/v1/monitoring/<model_id>/performance", "READ"),
          ("POST", "/v1/monitoring/<model_id>/feedback", "READ"),
          ("GET", "/v1/monitoring/<model_id>/schedule", "READ"),
          ("PUT", "/v1/monitoring/<model_id>/schedule", "EDIT"),
          ("DELETE", "/v1/monitoring/<model_id>/schedule", "EDIT"))


@dataclasses.dataclass
class Monitoring:
    outcomes: object  # outcomes.Outcomes
    checks: object  # checks.Checks


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai import signals
    from mlflow_hokusai.db import model_rows
    from mlflow_hokusai.db.schema import drift_checks, drift_results, monitored_predictions
    from mlflow_hokusai.plugins.auth.scopes import READ
    from mlflow_hokusai.plugins.monitoring.checks import Checks
    from mlflow_hokusai.plugins.monitoring.outcomes import Outcomes
    from mlflow_hokusai.plugins.monitoring.views import blueprint
    from mlflow_hokusai.routes import Access

    for method, template, level in ROUTES:
        hokusai.routes.declare(method, template, Access("registered_model", level, "model_id"))
    hokusai.reserved_experiments.add(hokusai.settings.monitoring_experiment)
    # Feedback needs what predicting needs: the read scope (not write).
    hokusai.routes.add_rule({"POST"}, r"(?:/api)?/v1/monitoring/[^/]+/feedback", READ)
    outcomes = Outcomes(hokusai.engine)
    hokusai.connect(signals.prediction_served, outcomes.on_prediction)
    hokusai.connect(signals.model_changed, model_rows.follower(
        hokusai, monitored_predictions, drift_checks, drift_results))
    checks = Checks(hokusai)
    hokusai.monitoring = Monitoring(outcomes, checks)
    supervisor = hokusai.serving.supervisor
    if supervisor is not None:
        retention = hokusai.settings.prediction_log_retention_days

        def monitoring_tick(last=[0.0]):  # noqa: B006 - the time of the last expiry, kept between calls
            checks.tick()
            if time.monotonic() - last[0] > 3600:  # hourly is plenty for a retention in days
                last[0] = time.monotonic()
                outcomes.expire(retention)

        supervisor.ticks.append(monitoring_tick)
    flask_app.register_blueprint(blueprint)
