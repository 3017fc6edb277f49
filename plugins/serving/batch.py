"""Batch prediction jobs (``POST /v1/predictions/batch``): a CSV or Parquet
file from the artifact store, predicted ``batch_size`` rows per call through
the model's deployment, written back as the input plus a ``prediction``
column.

Jobs are rows in ``hokusai_batch_jobs``, run one at a time by the serving
supervisor (so by one server worker of the host). A job found ``running`` by
a supervisor that did not start it was interrupted (its server worker died or
the server restarted): it is queued again and starts over, up to
``MAX_ATTEMPTS`` times, then ``failed`` saying so; it never silently stops.
The output is uploaded only when complete, so a reader never sees half a file.

MLflow's own job runner is not used: it refuses store URIs with a plugin
scheme (``hokusai+postgresql://``) and is turned off in many deployments.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import tempfile
import threading
import urllib.parse
import uuid

from mlflow_hokusai.db.schema import batch_jobs as table
from mlflow_hokusai.plugins.models import artifacts, datasets
from mlflow_hokusai.plugins.serving import resolve
from mlflow_hokusai.plugins.serving.store import READY, now_ms

_logger = logging.getLogger(__name__)
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
MAX_ATTEMPTS = 3
WRITERS = {".csv": lambda frame, path: frame.to_csv(path, index=False),
           ".parquet": lambda frame, path: frame.to_parquet(path, index=False)}


def artifact_location(uri: str) -> tuple[str, str]:
    """(store root, path in it) of a ``runs:/`` or ``mlflow-artifacts:/`` URI."""
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    from mlflow_hokusai.plugins.models.registry import tracking_store

    if urllib.parse.urlparse(uri).scheme.lower() == "runs":
        run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
        return tracking_store().get_run(run_id).info.artifact_uri, (path or "").strip("/")
    return "mlflow-artifacts:/", urllib.parse.urlparse(uri).path.strip("/")


def upload(frame, uri: str) -> None:
    root, path = artifact_location(uri)
    repo, base = artifacts.repository(root)
    directory, name = posixpath.split(path)
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, name)
        WRITERS[os.path.splitext(name)[1].lower()](frame, local)
        target = posixpath.join(base, directory) if base else directory
        repo.log_artifact(local, target or None)


@dataclasses.dataclass(frozen=True)
class Job:
    id: str
    model_name: str
    version: str | None
    input_path: str
    output_path: str
    batch_size: int
    status: str
    rows_total: int | None
    rows_done: int
    attempts: int
    error: str | None
    created_by: str | None
    created_at: int
    updated_at: int


class BatchJobs:
    def __init__(self, engine, deployments, client, settings):
        self.engine = engine
        self.deployments = deployments  # store.DeploymentStore
        self.client = client  # client.WorkerClient
        self.settings = settings
        self.current: str | None = None  # the job this process runs

    def create(self, model_name, version, input_path, output_path, batch_size, user) -> Job:
        at = now_ms()
        row = {"id": uuid.uuid4().hex, "model_name": model_name,
               "version": None if version is None else str(version),
               "input_path": input_path, "output_path": output_path, "batch_size": batch_size,
               "status": QUEUED, "rows_total": None, "rows_done": 0, "attempts": 0,
               "error": None, "created_by": user, "created_at": at, "updated_at": at}
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(**row))
        return Job(**row)

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(table.select().where(table.c.id == job_id)).first()
        return Job(**row._mapping) if row else None

    def _update(self, job_id: str, **values) -> None:
        with self.engine.begin() as connection:
            connection.execute(table.update().where(table.c.id == job_id)
                               .values(updated_at=now_ms(), **values))

    def tick(self) -> None:
        """Leader only: requeue interrupted jobs, start the next runnable one."""
        with self.engine.connect() as connection:
            jobs = [Job(**r._mapping) for r in connection.execute(
                table.select().where(table.c.status.in_((QUEUED, RUNNING)))
                .order_by(table.c.created_at))]
        runnable = []
        for job in jobs:
            if job.id == self.current:
                continue
            if job.status == RUNNING:
                if job.attempts >= MAX_ATTEMPTS:
                    self._update(job.id, status=FAILED,
                                 error=f"interrupted {job.attempts} times (server restarts)")
                    continue
                self._update(job.id, status=QUEUED, rows_done=0)
            runnable.append(job)
        if self.current is not None:
            return
        for job in runnable:
            deployment = self._deployment(job)
            if deployment is not None:
                self._start(job, deployment)
                return

    def _deployment(self, job):
        try:
            deployment = resolve.deployment_for(self.deployments, job.model_name, job.version)
        except Exception as exc:  # noqa: BLE001 - no deployment: the job cannot run
            self._update(job.id, status=FAILED, error=str(exc)[:1000])
            return None
        return deployment if deployment.status == READY else None  # wait for it

    def _start(self, job: Job, deployment) -> None:
        self.current = job.id
        self._update(job.id, status=RUNNING, attempts=job.attempts + 1, rows_done=0,
                     error=None)
        threading.Thread(target=self._run, args=(job, deployment), daemon=True,
                         name=f"hokusai-batch-{job.id}").start()

    def _run(self, job: Job, deployment) -> None:
        try:
            frame = datasets.load_stored(job.input_path, self.settings)
            self._update(job.id, rows_total=len(frame))
            predictions = []
            for start in range(0, len(frame), job.batch_size):
                records = frame.iloc[start:start + job.batch_size].to_dict("records")
                predictions += self.client.predict(deployment, records, False, False)[
                    "predictions"]
                self._update(job.id, rows_done=len(predictions))
            upload(frame.assign(prediction=predictions), job.output_path)
            self._update(job.id, status=SUCCEEDED)
        except Exception as exc:  # noqa: BLE001 - reported on the job
            _logger.warning("Batch job %s failed: %s", job.id, exc)
            self._update(job.id, status=FAILED, error=str(exc)[:1000])
        finally:
            self.current = None
