"""Serving pieces that need no server: input checks against a signature, the
model workers' environment, version references, prediction sampling, the
worker's watchdog and the per-worker deployment lookup."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mlflow_hokusai.db import migrate
from mlflow_hokusai.errors import NotFound, ValidationFailed
from mlflow_hokusai.plugins.models.predictions import PredictionStore
from mlflow_hokusai.plugins.serving import resolve, sandbox, signature
from mlflow_hokusai.plugins.serving.lookup import DeploymentLookup
from mlflow_hokusai.plugins.serving.predictlog import DAY_MS, PredictionLog
from mlflow_hokusai.plugins.serving.store import READY, STARTING, Deployment
from mlflow_hokusai.plugins.serving.worker import EXIT_TIMEOUT, Watchdog, WorkerApp, answer

COLUMNS = [{"name": "age", "type": "long", "required": True},
           {"name": "score", "type": "double", "required": True},
           {"name": "city", "type": "string", "required": False}]


def _issues(records):
    with pytest.raises(ValidationFailed) as refused:
        signature.check(records, COLUMNS, ["body", "features"])
    return [(issue["loc"], issue["msg"]) for issue in refused.value.detail]


def test_signature_accepts_good_records():
    signature.check([{"age": 3, "score": 1}, {"age": 4, "score": 2.5, "city": "x"}],
                    COLUMNS, ["body", "features"])
    signature.check([{"anything": 1}], None, ["body", "features"])  # no signature


def test_signature_names_each_bad_feature():
    assert _issues([{"score": 1.0}]) == [(["body", "features", "age"],
                                          "Missing feature 'age'")]
    assert _issues([{"age": 1.5, "score": True}]) == [
        (["body", "features", "age"], "Feature 'age' must be an integer (long)"),
        (["body", "features", "score"], "Feature 'score' must be a number (double)")]
    assert _issues([{"age": 1, "score": 1}, {"age": 1, "score": 1, "zip": 9}]) == [
        (["body", "features", 1, "zip"], "Unknown feature 'zip'")]
    assert _issues([]) == [(["body", "features"], "No records given")]
    assert _issues(["text"]) == [(["body", "features"],
                                  "A record must be an object of feature values")]


def test_worker_environment_is_an_allow_list(tmp_path):
    environ = {"PATH": "/bin", "LANG": "C.UTF-8", "HOKUSAI_DATABASE_URI": "postgresql://x",
               "AWS_SECRET_ACCESS_KEY": "s", "MLFLOW_TRACKING_TOKEN": "t",
               "_MLFLOW_SERVER_FILE_STORE": "sqlite:///x", "GOOGLE_APPLICATION_CREDENTIALS": "g"}
    env = sandbox.worker_environment(tmp_path, environ)
    assert env["PATH"] == "/bin" and env["HOME"] == str(tmp_path)
    assert not {"HOKUSAI_DATABASE_URI", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_TOKEN",
                "_MLFLOW_SERVER_FILE_STORE", "GOOGLE_APPLICATION_CREDENTIALS"} & set(env)
    assert Path(env["TMPDIR"]).is_dir()


def test_version_references():
    assert resolve.parse(None) == (None, "production")
    assert resolve.parse("@champion") == (None, "champion")
    assert resolve.parse(3) == (3, None) and resolve.parse("3") == (3, None)
    for bad in ("three", "@", 0, "-1"):
        with pytest.raises(NotFound):
            resolve.parse(bad)


def test_prediction_log_counts_all_and_samples_some(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    migrate.upgrade(engine)
    draws = iter([0.05, 0.5, 0.09])  # rate 0.1: the first and last are sampled
    log = PredictionLog(PredictionStore(engine), engine, 0.1, rng=lambda: next(draws))
    records = [{"a": 1}, {"a": 2}, {"a": 3}]
    log.add("m", 1, records, [10, 20, 30], 4.0, "alice")
    log.flush()
    assert PredictionStore(engine).summary("m", 1)["total_predictions"] == 3
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT inputs, outputs, sampled_at FROM hokusai_prediction_samples ORDER BY id")
        ).all()
    assert [(json.loads(i), json.loads(o)) for i, o, _ in rows] == [({"a": 1}, 10),
                                                                     ({"a": 3}, 30)]
    sampled_at = rows[0][2]
    assert log.expire(30, now_ms=sampled_at + 29 * DAY_MS) == 0
    assert log.expire(30, now_ms=sampled_at + 31 * DAY_MS) == 2


def test_prediction_counts_and_their_samples_are_committed_together(tmp_path):
    # A reader that sees the counts must also see the samples (drift and the
    # serving test read both), so a failed sample write takes its counts along.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    migrate.upgrade(engine)
    log = PredictionLog(PredictionStore(engine), engine, 1.0)
    log.add("m", 1, [{"a": 1}], [10], 4.0, "alice")
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE hokusai_prediction_samples "
                                   "RENAME TO moved_away"))
    log.flush()
    assert PredictionStore(engine).summary("m", 1)["total_predictions"] == 0


def test_watchdog_ends_only_a_call_past_its_time():
    exits = []
    watchdog = Watchdog(0.3, tick=0.02, exit=exits.append)
    assert watchdog(lambda: "quick") == "quick"
    time.sleep(0.4)
    assert exits == []  # a finished call is not watched any more
    watchdog(lambda: time.sleep(1.0))
    assert exits and exits[0] == EXIT_TIMEOUT


class _Scorer:
    def __init__(self, result=None, error=None):
        self.result, self.error = result, error

    def predict(self, records, probabilities, explain):
        if self.error is not None:
            raise self.error
        return {**self.result, "records": records, "probabilities": probabilities}


def _worker_call(scorer, method="POST", path="/hokusai/predict", body=b'{"records": [1]}'):
    app = WorkerApp(lambda data: answer(scorer, Watchdog(5), data))

    async def call():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
            return await client.request(method, path, content=body)

    reply = asyncio.run(call())
    return reply.status_code, reply.json()


def test_worker_answers_each_way_of_failing_with_its_own_status():
    from mlflow.exceptions import MlflowException

    from mlflow_hokusai.plugins.serving.scorer import NoBackground

    assert _worker_call(_Scorer({"predictions": [0]})) == (
        200, {"predictions": [0], "records": [1], "probabilities": False})
    assert _worker_call(_Scorer(error=MlflowException("bad column")))[0] == 400
    assert _worker_call(_Scorer({}), body=b"{}")[0] == 400  # no records
    assert _worker_call(_Scorer({}), body=b"not json")[0] == 400
    assert _worker_call(_Scorer(error=NoBackground("none")))[0] == 409
    status, body = _worker_call(_Scorer(error=ZeroDivisionError("boom")))
    assert (status, body["error"]) == (500, "ZeroDivisionError: boom")
    status, body = _worker_call(_Scorer({"predictions": [float("nan")]}))
    assert status == 500 and "NaN" in body["error"]  # never invalid JSON
    assert _worker_call(_Scorer({}), "GET", "/ping", b"") == (200, {})
    assert _worker_call(_Scorer({}), "GET", "/invocations", b"")[0] == 404


def test_worker_pings_while_a_model_computes():
    started, release = threading.Event(), threading.Event()

    def slow(data):
        started.set()
        release.wait(10)
        return 200, {"predictions": []}

    app = WorkerApp(slow)

    async def both():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
            predicting = asyncio.create_task(client.post("/hokusai/predict", content=b"{}"))
            await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
            ping = await client.get("/ping")
            release.set()
            return ping.status_code, (await predicting).status_code

    assert asyncio.run(both()) == (200, 200)


class _Rows:
    """A deployment store counting its reads."""

    def __init__(self, status=READY):
        self.reads = 0
        self.status = status

    def get(self, deployment_id):
        self.reads += 1
        return _row(self.status) if deployment_id == "d1" else None


def _row(status):
    return Deployment(id="d1", model_name="m", version=1, alias=None, resolved_version=1,
                      replicas=1, status=status, reason=None, endpoints="127.0.0.1:1",
                      signature=None, reference_dataset=None, restarts=0, created_by=None,
                      created_at=0, updated_at=0)


def test_lookup_remembers_ready_deployments_for_its_ttl():
    rows, now = _Rows(), [0.0]
    lookup = DeploymentLookup(rows, 0.3, clock=lambda: now[0])
    assert lookup.by_id("d1").id == lookup.by_id("d1").id == "d1"
    assert rows.reads == 1
    lookup.forget()  # a call found the worker gone
    lookup.by_id("d1")
    assert rows.reads == 2
    now[0] += 0.2
    lookup.by_id("d1")
    assert rows.reads == 2
    now[0] += 0.2  # past the TTL
    lookup.by_id("d1")
    assert rows.reads == 3
    with pytest.raises(NotFound):
        lookup.by_id("gone")
    assert lookup.root("d1") == ("registered_model", "m") and lookup.root("gone") is None


def test_lookup_reads_starting_deployments_every_time():
    rows = _Rows(STARTING)
    lookup = DeploymentLookup(rows, 0.5)
    lookup.by_id("d1")
    lookup.by_id("d1")
    assert rows.reads == 2
    rows = _Rows()
    uncached = DeploymentLookup(rows, 0)  # HOKUSAI_SERVING_CACHE_SECONDS=0
    uncached.by_id("d1")
    uncached.by_id("d1")
    assert rows.reads == 2




def test_threads_missing_the_same_entry_together_read_it_once():
    """Requests in flight when an entry expires wait for one read of it instead
    of each reading the database again."""
    import threading

    class _SlowRows(_Rows):
        def __init__(self):
            super().__init__()
            self.reading, self.release = threading.Event(), threading.Event()

        def get(self, deployment_id):
            self.reading.set()
            self.release.wait(10)
            return super().get(deployment_id)

    rows = _SlowRows()
    lookup = DeploymentLookup(rows, 0.5)
    found = []
    threads = [threading.Thread(target=lambda: found.append(lookup.by_id("d1").id))
               for _ in range(4)]
    threads[0].start()
    assert rows.reading.wait(10)  # the first read is in progress
    for thread in threads[1:]:
        thread.start()
    rows.release.set()
    for thread in threads:
        thread.join(10)
    assert found == ["d1"] * 4
    assert rows.reads == 1
def test_threads_copying_the_same_version_at_once_both_get_the_copy(tmp_path, monkeypatch):
    """Two requests of one worker loading a model it has not copied yet: both
    download it, one rename wins, and the other uses the winner's copy (a
    rename onto the filled directory failed with a 500 in a DSPy batch)."""
    import threading

    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    from mlflow_hokusai.plugins.models import artifacts
    from mlflow_hokusai.plugins.serving import modelfiles

    stored = tmp_path / "stored"
    (stored / "sub").mkdir(parents=True)
    (stored / "MLmodel").write_text("flavors: {}\n")
    (stored / "sub" / "weights.bin").write_bytes(b"w" * 100)
    monkeypatch.setattr(artifacts, "version_repository",
                        lambda name, version: (LocalArtifactRepository(str(stored)), ""))
    both_downloaded = threading.Barrier(2, timeout=30)
    real_download_all = artifacts.download_all

    def download_all_together(repo, files, directory):
        real_download_all(repo, files, directory)
        both_downloaded.wait()  # neither renames before both have downloaded

    monkeypatch.setattr(artifacts, "download_all", download_all_together)
    results, errors = [], []

    def copy():
        try:
            results.append(modelfiles.model_copy("m", 1, tmp_path / "copies" / "1"))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert (results[0] / "sub" / "weights.bin").read_bytes() == b"w" * 100
    assert sorted(p.name for p in (tmp_path / "copies" / "1").iterdir()) == ["model"]


class _SchemaModel:
    """A pyfunc model as the scorer sees it: a column signature, no raw model."""

    def __init__(self, names):
        from mlflow.models.signature import ModelSignature
        from mlflow.types import ColSpec, Schema

        self.metadata = type("Metadata", (), {"get_input_schema": staticmethod(
            lambda: ModelSignature(Schema([ColSpec("double", n) for n in names])).inputs)})()

    def get_raw_model(self):
        raise NotImplementedError


def test_scorer_frame_is_its_records_in_the_signature_order():
    """The frame the model gets is the records' frame with the signature's
    columns, in its order: built directly for whole records, and the same as
    ``from_records`` then a selection for any other input."""
    import pandas as pd

    from mlflow_hokusai.plugins.serving.scorer import Scorer

    names = ["a", "b", "c"]
    scorer = Scorer(_SchemaModel(names))
    whole = [{"c": "x", "a": 1, "b": None, "extra": 5}, {"b": True, "a": 2.5, "c": "y"}]
    partial = [{"a": 1, "b": 2, "c": "x"}, {"a": 2, "c": "y"}]  # b missing once: NaN
    for records in (whole, partial, whole[:1]):
        frame = scorer.frame(records)
        assert list(frame.columns) == names
        pd.testing.assert_frame_equal(frame, pd.DataFrame.from_records(records)[names])
    with pytest.raises(KeyError):  # a column no record has (the worker answers 400)
        scorer.frame([{"a": 1, "c": "x"}])


def test_a_crash_is_recorded_with_the_status_it_leaves(tmp_path):
    """The restart count and the status change in one write: a reader never sees
    the new restart beside "ready" and the dead worker's address."""
    import types

    from mlflow_hokusai.plugins.serving.store import READY, STARTING, Deployment
    from mlflow_hokusai.plugins.serving.supervisor import Replica, Running, Supervisor

    class Process:
        def __init__(self, code):
            self.code = code

        def poll(self):
            return self.code

    updates = []
    store = types.SimpleNamespace(update=lambda deployment_id, **values: updates.append(values))
    settings = types.SimpleNamespace(serving_max_restarts=1, serving_start_timeout_seconds=60,
                                     serving_timeout_seconds=10, serving_memory_mb=512)
    supervisor = Supervisor(store, settings, tmp_path, resolve=lambda row: 1, clock=lambda: 0.0)
    supervisor._spawn = lambda *args: Replica(Process(None), "127.0.0.1:2", tmp_path / "new.log",
                                              0.0)
    (tmp_path / "old.log").write_text("boom\n")
    row = Deployment("d1", "m", 1, None, 1, 1, READY, None, "127.0.0.1:1", None, None, 0,
                     None, 0, 0)
    running = Running(1, [Replica(Process(3), "127.0.0.1:1", tmp_path / "old.log", 0.0, True)])
    supervisor._watch(row, running)
    assert updates == [{"status": STARTING, "endpoints": None, "restarts": 1,
                        "reason": "worker exited with code 3: boom"}]
