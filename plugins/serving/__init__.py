"""Model serving (issue 17): deployments of registered versions, each running
its model in worker processes of its own (never in the server process), and
predictions with probabilities, confidence and SHAP explanations.

Modules: ``store`` (deployment rows), ``supervisor`` (the one owner of the
worker processes, elected by a file lock), ``sandbox`` (how a worker is
started: environment, limits), ``worker`` and ``scorer`` (the worker
process), ``client`` (server worker -> model worker calls), ``signature``
(input checks), ``lookup`` (which deployment answers, remembered for under a
second), ``predictlog`` (statistics and samples), ``views``.
Kept import-light: ``worker`` runs as ``python -m`` of this package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from pathlib import Path

DEPLOYMENT_ROUTES = (("GET", "/deployment/<deployment_id>", "READ"),
                     ("DELETE", "/deployment/<deployment_id>", "EDIT"),
                     ("POST", "/deployment/<deployment_id>/predict", "READ"))
# It records into the models plugin's predictions, and tells the permission
# check whose a deployment is.
NEEDS = ("auth", "models")


@dataclasses.dataclass
class Serving:
    store: object  # store.DeploymentStore
    lookup: object  # lookup.DeploymentLookup
    client: object  # client.WorkerClient
    log: object  # predictlog.PredictionLog
    supervisor: object | None  # supervisor.Supervisor, unless serving is off
    jobs: object  # batch.BatchJobs


def serving_dir(settings, database_uri: str) -> Path:
    if settings.serving_dir:
        return Path(settings.serving_dir)
    digest = hashlib.sha256(database_uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "hokusai-serving" / digest


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai import signals
    from mlflow_hokusai.db import model_rows
    from mlflow_hokusai.db.schema import batch_jobs, deployments, prediction_samples
    from mlflow_hokusai.plugins.auth.scopes import READ
    from mlflow_hokusai.plugins.serving import resolve
    from mlflow_hokusai.plugins.serving.batch import BatchJobs
    from mlflow_hokusai.plugins.serving.client import WorkerClient
    from mlflow_hokusai.plugins.serving.lookup import DeploymentLookup
    from mlflow_hokusai.plugins.serving.predictlog import PredictionLog
    from mlflow_hokusai.plugins.serving.store import DeploymentStore
    from mlflow_hokusai.plugins.serving.supervisor import Supervisor
    from mlflow_hokusai.plugins.serving.views import blueprint
    from mlflow_hokusai.routes import Access

    settings = hokusai.settings
    store = DeploymentStore(hokusai.engine)
    lookup = DeploymentLookup(store, settings.serving_cache_seconds)
    for method, template, level in DEPLOYMENT_ROUTES:
        hokusai.routes.declare(method, template, Access("deployment", level, "deployment_id"))
    hokusai.authorizer.ownership.finders["deployment"] = lookup.root
    # Predicting only reads (the model in the body is checked in the view).
    hokusai.routes.add_rule({"POST"}, r"(?:/api)?/v1/predictions", READ)
    hokusai.routes.add_rule({"POST"}, r"(?:/api)?/deployment/[^/]+/predict", READ)
    log = PredictionLog(hokusai.predictions, hokusai.engine,
                        settings.prediction_log_sample_rate)
    client = WorkerClient(settings.serving_timeout_seconds, settings.retry_after_seconds)
    jobs = BatchJobs(hokusai.engine, store, client, settings)
    supervisor = None
    if settings.serving_enabled:
        # hourly is plenty for a retention in days; `last` is kept between calls
        def expire_samples(last=[0.0]):  # noqa: B006
            if time.monotonic() - last[0] > 3600:
                last[0] = time.monotonic()
                log.expire(settings.prediction_log_retention_days)

        supervisor = Supervisor(
            store, settings, serving_dir(settings, hokusai.database_uri),
            lambda row: resolve.version_of(row.model_name, row.version, row.alias),
            ticks=(expire_samples, jobs.tick))
        supervisor.start()
    # A deleted model's deployments go (the supervisor stops their workers at its
    # next round); a renamed one's keep serving under the new name.
    hokusai.connect(signals.model_changed,
                    model_rows.follower(hokusai, deployments, batch_jobs, prediction_samples))
    hokusai.serving = Serving(store, lookup, client, log, supervisor, jobs)
    flask_app.register_blueprint(blueprint)
