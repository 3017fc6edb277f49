"""Per-resource permissions on MLflow's jobs API (FastAPI-native, so uvicorn
only: a job belongs to the principal MLflow records as its creator) and on the
prompts ``traces/link-prompts`` names (registered models: READ on each)."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import mlflow
import pytest

from tests.support.callers import API, Caller, grant, is_refused
from tests.support.experiment_children import log_trace
from tests.support.hokusai_servers import start_server

pytestmark = pytest.mark.usefixtures("no_telemetry")

JOBS = "/ajax-api/3.0/jobs"
# MLflow's Flask app serves a job's get and cancel too, under its own prefix.
FLASK_JOBS = "/ajax-api/3.0/mlflow/jobs"


def _job(server, creator: str | None) -> str:
    """A job as MLflow's submit records it (creator: the submitting principal).
    MLflow's job runner is off on the test servers, so it is written to the
    server's job store directly; the server only reads it."""
    from mlflow.store.jobs.sqlalchemy_store import SqlAlchemyJobStore

    store = SqlAlchemyJobStore(server.server.backend_uri)
    return store.create_job("tests.noop", json.dumps({"x": 1}), creator=creator).job_id


def _callers(server, tag: str) -> tuple[Caller, Caller, Caller]:
    return (Caller(server, server.create_key("read,write", owner=f"alice-{tag}")),
            Caller(server, server.create_key("read,write", owner=f"bob-{tag}")),
            Caller(server, server.admin_key))


def _searched(caller: Caller) -> set[str]:
    return {job["job_id"] for job in caller.ok("POST", f"{JOBS}/search", json={})["jobs"]}


@pytest.mark.parametrize("jobs", [JOBS, FLASK_JOBS])
def test_a_job_is_its_submitters(uvicorn_sqlite, jobs):
    """Default READ: anyone reads a job, only its creator (or an admin) cancels it."""
    server, tag = uvicorn_sqlite, uuid.uuid4().hex[:8]
    alice, bob, admin = _callers(server, tag)
    job = _job(server, f"alice-{tag}")
    assert bob.ok("GET", f"{JOBS}/{job}")["creator"] == f"alice-{tag}"  # the Flask one hides it
    assert bob.ok("GET", f"{jobs}/{job}")["status"] == "PENDING"
    assert is_refused(bob("PATCH", f"{jobs}/cancel/{job}"))
    assert bob.ok("GET", f"{jobs}/{job}")["status"] == "PENDING"  # not canceled
    assert alice.ok("PATCH", f"{jobs}/cancel/{job}")["status"] == "CANCELED"
    other = _job(server, f"alice-{tag}")
    assert admin.ok("PATCH", f"{jobs}/cancel/{other}")["status"] == "CANCELED"
    # No such job: MLflow's own answer. One nobody submitted: the default permission.
    assert bob("GET", f"{jobs}/no-such-job").status_code == 404
    orphan = _job(server, None)
    assert bob("GET", f"{jobs}/{orphan}").status_code == 200
    assert is_refused(bob("PATCH", f"{jobs}/cancel/{orphan}"))
    assert {job, other, orphan} <= _searched(bob)  # everyone reads every job


@pytest.fixture(scope="module")
def private_uvicorn(tmp_path_factory):
    backend = f"sqlite:///{tmp_path_factory.mktemp('private-jobs') / 'mlflow.db'}"
    running = start_server(tmp_path_factory, "private-jobs", backend, server="uvicorn",
                           extra_env={"HOKUSAI_DEFAULT_PERMISSION": "NO_PERMISSIONS"})
    yield running
    running.server.stop()


def test_on_a_private_server_jobs_are_hidden_from_others(private_uvicorn):
    server, tag = private_uvicorn, uuid.uuid4().hex[:8]
    alice, bob, admin = _callers(server, tag)
    hers, his, orphan = _job(server, f"alice-{tag}"), _job(server, f"bob-{tag}"), _job(server, None)
    for job, jobs in itertools.product((hers, orphan), (JOBS, FLASK_JOBS)):  # as if none
        for method, path in (("GET", f"{jobs}/{job}"), ("PATCH", f"{jobs}/cancel/{job}")):
            response = bob(method, path)
            assert response.status_code == 404, (method, response.text)
            assert job in response.json()["message"]
    assert bob.ok("GET", f"{JOBS}/{his}")["creator"] == f"bob-{tag}"
    assert alice.ok("GET", f"{JOBS}/{hers}")["job_id"] == hers
    assert his in _searched(bob) and not {hers, orphan} & _searched(bob)
    assert hers in _searched(alice) and not {his, orphan} & _searched(alice)
    assert {hers, his, orphan} <= _searched(admin)


def _prompt(server, owner: Caller, name: str, monkeypatch) -> None:
    """A prompt registered by the unmodified MLflow client (a registered model)."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", owner.key)
    mlflow.set_tracking_uri(server.url)
    mlflow.genai.register_prompt(name=name, template="Say {{ x }}")


def test_linking_prompts_needs_read_on_each_prompt(team, monkeypatch):
    server, alice, bob, admin, tag = team
    theirs, mine = f"alices-prompt-{tag}", f"bobs-prompt-{tag}"
    _prompt(server, alice, theirs, monkeypatch)
    _prompt(server, bob, mine, monkeypatch)
    experiment = bob.ok("POST", f"{API}/experiments/create", json={"name": f"lp-{tag}"})[
        "experiment_id"]
    trace = log_trace(server.url, bob.key, experiment, monkeypatch)

    def link(*names: str, field: str = "prompt_versions"):
        return bob("POST", f"{API}/traces/link-prompts", json={
            "trace_id": trace, field: [{"name": name, "version": "1"} for name in names]})

    response = link(mine, theirs)  # the default permission reads: allowed
    assert response.status_code == 200, response.text
    grant(alice, f"bob-{tag}", "registered_model", theirs, "NO_PERMISSIONS")
    time.sleep(1.0)  # every worker reads grants again within a second
    for response in (link(mine, theirs), link(theirs), link(theirs, field="promptVersions")):
        assert response.status_code == 404, response.text
        assert theirs in response.json()["message"]
    assert link(mine).status_code == 200
    assert bob("POST", f"{API}/traces/link-prompts", json={
        "trace_id": trace, "prompt_versions": [{"name": [theirs], "version": "1"}]}
    ).status_code == 400
