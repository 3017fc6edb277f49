"""A private server (HOKUSAI_DEFAULT_PERMISSION=NO_PERMISSIONS): searches and
gets show a principal only what it owns or was granted, with full pages, on
uvicorn + SQLite and gunicorn + PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.callers import API, Caller, grant
from tests.support.experiment_children import children_world, owners_answer, reads
from tests.support.hokusai_servers import start_server

pytestmark = pytest.mark.usefixtures("no_telemetry")

PRIVATE = {"HOKUSAI_DEFAULT_PERMISSION": "NO_PERMISSIONS"}


@pytest.fixture(scope="module", params=["uvicorn-sqlite", "gunicorn-postgres"])
def private_server(request, tmp_path_factory, make_postgres_database):
    if request.param == "uvicorn-sqlite":
        backend = f"sqlite:///{tmp_path_factory.mktemp('private') / 'mlflow.db'}"
        running = start_server(tmp_path_factory, "private-uvicorn", backend, server="uvicorn",
                               extra_env=PRIVATE)
    else:
        backend = make_postgres_database()
        running = start_server(tmp_path_factory, "private-gunicorn", backend, server="gunicorn",
                               hokusai_db=backend, extra_env=PRIVATE)
    yield running
    running.server.stop()


def _pages(caller: Caller, path: str, query: dict, items: str, size: int) -> list[list]:
    """Every page of a search; POST with a JSON body (runs, experiments) or GET."""
    pages, token = [], None
    while True:
        body = {**query, "max_results": size, **({"page_token": token} if token else {})}
        if path.endswith(("runs/search", "experiments/search", "logged-models/search")):
            answer = caller.ok("POST", path, json=body)
        else:
            answer = caller.ok("GET", path, params=body)
        pages.append(answer.get(items, []))
        token = answer.get("next_page_token")
        if not token:
            return pages


def test_searches_show_only_what_one_may_read_with_full_pages(private_server):
    tag = uuid.uuid4().hex[:8]
    alice = Caller(private_server, private_server.create_key("read,write", owner=f"alice-{tag}"))
    bob = Caller(private_server, private_server.create_key("read,write", owner=f"bob-{tag}"))
    mine: dict[str, list] = {"alice": [], "bob": []}
    for index in range(5):  # interleaved, so a filter after paging would leave holes
        for who, caller in (("alice", alice), ("bob", bob)):
            name = f"vis-{tag}-{index}-{who}"
            experiment = caller.ok("POST", f"{API}/experiments/create",
                                   json={"name": name})["experiment_id"]
            run = caller.ok("POST", f"{API}/runs/create", json={"experiment_id": experiment})
            caller.ok("POST", f"{API}/logged-models",
                      json={"experiment_id": experiment, "name": "lm"})
            caller.ok("POST", f"{API}/registered-models/create", json={"name": name})
            caller.ok("POST", f"{API}/model-versions/create",
                      json={"name": name, "source": run["run"]["info"]["artifact_uri"],
                            "run_id": run["run"]["info"]["run_id"]})
            mine[who].append((name, experiment))

    like = f"name LIKE 'vis-{tag}-%'"
    experiments = _pages(bob, f"{API}/experiments/search", {"filter": like}, "experiments", 2)
    assert [len(page) for page in experiments] == [2, 2, 1]
    assert sorted(e["name"] for page in experiments for e in page) == \
        sorted(name for name, _ in mine["bob"])
    models = _pages(bob, f"{API}/registered-models/search", {"filter": like},
                    "registered_models", 2)
    assert [len(page) for page in models] == [2, 2, 1]
    assert {m["name"] for page in models for m in page} == {n for n, _ in mine["bob"]}
    versions = _pages(bob, f"{API}/model-versions/search", {"filter": like},
                      "model_versions", 2)
    assert [len(page) for page in versions] == [2, 2, 1]
    # Runs: asked for everyone's experiments, bob gets his own experiments' runs.
    every = [experiment for who in mine.values() for _, experiment in who]
    runs = _pages(bob, f"{API}/runs/search", {"experiment_ids": every}, "runs", 2)
    assert [len(page) for page in runs] == [2, 2, 1]
    assert {r["info"]["experiment_id"] for page in runs for r in page} == \
        {experiment for _, experiment in mine["bob"]}

    # Hokusai's model API lists only what bob may read, its pages full too.
    listed, token = [], None
    while True:
        page = bob.ok("GET", "/api/models/", params={"name": f"vis-{tag}", "max_results": 2,
                                                     **({"page_token": token} if token else {})})
        listed.append([m["name"] for m in page["models"]])
        token = page["next_page_token"]
        if not token:
            break
    assert [len(names) for names in listed] == [2, 2, 1]
    assert {n for names in listed for n in names} == {n for n, _ in mine["bob"]}
    for who, caller in (("alice", alice), ("bob", bob)):
        caller.ok("POST", f"/api/models/{mine[who][0][0]}/1/transition",
                  json={"stage": "Production"})
    production = {m["name"] for m in bob.ok("GET", "/api/models/production")["models"]}
    assert mine["bob"][0][0] in production and mine["alice"][0][0] not in production

    logged = _pages(bob, f"{API}/logged-models/search", {"experiment_ids": every},
                    "models", 2)
    assert [len(page) for page in logged] == [2, 2, 1]
    assert {m["info"]["experiment_id"] for page in logged for m in page} == \
        {experiment for _, experiment in mine["bob"]}

    # Alice's experiment does not exist for bob (a 404, as MLflow answers a missing one).
    hidden = mine["alice"][0][1]
    response = bob("GET", f"{API}/experiments/get", params={"experiment_id": hidden})
    assert response.status_code == 404 and response.json()["error_code"] == \
        "RESOURCE_DOES_NOT_EXIST"
    assert bob("POST", f"{API}/runs/create",
               json={"experiment_id": hidden}).status_code == 404

    # GraphQL reaches the stores directly: they hide the run too.
    alice_run = alice.ok("POST", f"{API}/runs/search",
                         json={"experiment_ids": [hidden]})["runs"][0]["info"]["run_id"]
    query = {"query": "query q($id: String) { mlflowGetRun(input: {runId: $id}) "
                      "{ run { info { runId } } apiError { code } } }",
             "variables": {"id": alice_run}}
    answer = bob.ok("POST", "/graphql", json=query)
    # No run, and the same "not found" a run id nobody holds gets.
    assert answer["data"]["mlflowGetRun"] is None, answer
    assert str(answer["errors"][0]).endswith(f"Run with id={alice_run} not found"), answer
    assert alice.ok("POST", "/graphql", json=query)["data"]["mlflowGetRun"]["run"]["info"][
        "runId"] == alice_run
    models = bob("GET", f"{API}/registered-models/get", params={"name": mine["alice"][0][0]})
    assert models.status_code == 404

    grant(alice, f"bob-{tag}", "experiment", hidden, "READ")
    time.sleep(1.0)
    experiments = _pages(bob, f"{API}/experiments/search", {"filter": like}, "experiments", 3)
    assert [len(page) for page in experiments] == [3, 3]
    assert bob("GET", f"{API}/experiments/get",
               params={"experiment_id": hidden}).status_code == 200


def test_an_experiments_other_children_are_hidden_with_it(private_server, monkeypatch):
    """Traces, assessments, datasets, label schemas, review queues, issues,
    scorers and bulk metric reads of a hidden experiment do not exist for the
    caller (404), until it is granted READ."""
    tag = uuid.uuid4().hex[:8]
    alice = Caller(private_server, private_server.create_key("read,write", owner=f"alice-{tag}"))
    bob = Caller(private_server, private_server.create_key("read,write", owner=f"bob-{tag}"))
    world = children_world(private_server, alice, tag, monkeypatch)
    answers = [owners_answer(alice, *read) for read in reads(world)]
    for method, path, kwargs in reads(world):
        response = bob(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
    grant(alice, f"bob-{tag}", "experiment", world["experiment"], "READ")
    time.sleep(1.0)  # every worker reads grants again within a second
    assert [bob(method, path, **kwargs).status_code
            for method, path, kwargs in reads(world)] == answers
