"""DSPy programs end to end: a Predict and a ChainOfThought program (typed
signatures, DSPy's DummyLM) logged with mlflow.dspy.log_model and registered
through the unmodified MLflow client on a real server, then listed, run once
and in batches, timed out, traced, recorded, counted and unloaded through
/api/v1/dspy."""

from __future__ import annotations

import time
import uuid

import mlflow
import pytest
import requests
import sqlalchemy as sa

from mlflow_hokusai.db.engine import get_engine, to_sqlalchemy_url
from mlflow_hokusai.db.schema import audit_log, owners
from tests.support import dspy_programs
from tests.support.callers import Http
from tests.support.hokusai_servers import start_server
from tests.support.mlflow_client import mlflow_client


class Api(Http):
    def __init__(self, server, key=None):
        super().__init__(server.url + "/api", {"X-API-Key": key} if key else {}, timeout=300)

    def execute(self, program_id, inputs, **body):
        return self("POST", "/v1/dspy/execute",
                    json={"program_id": program_id, "inputs": inputs, **body})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    db_file = tmp_path_factory.mktemp("dspy-db") / "mlflow.db"
    server = start_server(tmp_path_factory, "dspy", f"sqlite:///{db_file}", server="uvicorn",
                          extra_env={"HOKUSAI_DSPY_BATCH_CONCURRENCY": "2",
                                     "HOKUSAI_HEALTH_CACHE_SECONDS": "0.5"})
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    owner = Api(server, server.create_key("read,write", owner=alice))
    names = {kind: f"{kind}-{tag}" for kind in ("capital", "sum", "failing", "sleeping")}
    with mlflow_client(server.url, owner.headers["X-API-Key"]) as client:
        mlflow.set_experiment(f"dspy-programs-{tag}")
        with mlflow.start_run():
            dspy_programs.log(dspy_programs.predict("Paris"), names["capital"])
            dspy_programs.log(dspy_programs.predict("Rome"), names["capital"])
            dspy_programs.log(dspy_programs.chain_of_thought(), names["sum"])
            dspy_programs.log(dspy_programs.failing(), names["failing"])
            dspy_programs.log(dspy_programs.sleeping(), names["sleeping"])
        client.set_registered_model_alias(names["capital"], "production", "1")
    # Bob may read every model but the ChainOfThought one.
    owner("POST", "/3.0/mlflow/users/permissions/grant",
          json={"username": bob, "resource_type": "registered_model",
                "resource_id": names["sum"], "permission": "NO_PERMISSIONS"}).raise_for_status()
    yield {"server": server, "owner": owner, "names": names, "users": (alice, bob),
           "bob": Api(server, server.create_key("read,write", owner=bob)),
           "admin": Api(server, server.admin_key)}
    server.server.stop()


def test_programs_are_listed_with_their_signatures_for_readers_only(world):
    names = world["names"]
    listed = world["owner"]("GET", "/v1/dspy/programs")
    assert listed.status_code == 200, listed.text
    programs = {p["name"]: p for p in listed.json()["programs"]}
    assert set(names.values()) <= set(programs)
    capital = programs[names["capital"]]
    assert capital["version"] == 1  # the production alias, not the latest
    assert capital["program_id"] == names["capital"]
    [signature] = capital["signatures"]
    assert [f["name"] for f in signature["input_fields"]] == ["country"]
    assert [(f["name"], f["type"]) for f in signature["output_fields"]] == \
        [("capital", "str")]
    assert capital["description"] == "Name the capital city of a country."
    [thought] = programs[names["sum"]]["signatures"]
    assert [f["name"] for f in thought["output_fields"]] == ["reasoning", "total"]
    seen_by_bob = {p["name"] for p in world["bob"]("GET", "/v1/dspy/programs").json()["programs"]}
    assert names["capital"] in seen_by_bob and names["sum"] not in seen_by_bob
    # Each listed program is loaded: a page holds at most 50.
    assert world["owner"]("GET", "/v1/dspy/programs?max_results=50").status_code == 200
    too_many = world["owner"]("GET", "/v1/dspy/programs?max_results=51")
    assert too_many.status_code == 422 and "max_results" in too_many.text


def test_execute_versions_aliases_and_alias_moves(world):
    owner, name = world["owner"], world["names"]["capital"]
    answers = {ref: owner.execute(ref, {"country": "Italy"}).json()
               for ref in (name, f"{name}:2", f"{name}@production")}
    assert answers[name]["outputs"] == {"capital": "Paris"}
    assert answers[name]["success"] and answers[name]["program_name"] == name
    assert answers[name]["metadata"]["version"] == 1
    assert answers[f"{name}:2"]["outputs"] == {"capital": "Rome"}
    assert answers[f"{name}@production"]["outputs"] == {"capital": "Paris"}
    with mlflow_client(world["server"].url, owner.headers["X-API-Key"]) as client:
        client.set_registered_model_alias(name, "production", "2")
    try:
        moved = owner.execute(name, {"country": "Italy"}).json()
        assert moved["outputs"] == {"capital": "Rome"} and moved["metadata"]["version"] == 2
    finally:
        with mlflow_client(world["server"].url, owner.headers["X-API-Key"]) as client:
            client.set_registered_model_alias(name, "production", "1")


def test_the_production_stage_set_through_mlflow_is_the_default(world):
    owner, name = world["owner"], world["names"]["capital"]
    with mlflow_client(world["server"].url, owner.headers["X-API-Key"]) as client:
        client.delete_registered_model_alias(name, "production")
        client.transition_model_version_stage(name, "1", "Production")
    try:
        answer = owner.execute(name, {"country": "Italy"}).json()
        assert answer["metadata"]["version"] == 1  # the stage's, not the latest (2)
        assert answer["outputs"] == {"capital": "Paris"}
    finally:
        with mlflow_client(world["server"].url, owner.headers["X-API-Key"]) as client:
            client.transition_model_version_stage(name, "1", "None")
            client.set_registered_model_alias(name, "production", "1")
    assert owner.execute(name, {"country": "Italy"}).json()["metadata"]["version"] == 1


def test_chain_of_thought_in_debug_mode_is_traced_and_recorded(world):
    owner, name = world["owner"], world["names"]["sum"]
    answer = owner.execute(name, {"a": 2, "b": 2}, mode="debug")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outputs"] == {"reasoning": "2 plus 2 is 4", "total": 4}
    [call] = body["metadata"]["trace"]
    assert call["inputs"] == {"a": 2, "b": 2}
    with mlflow_client(world["server"].url, world["admin"].headers["X-API-Key"]) as client:
        trace = client.get_trace(body["metadata"]["trace_id"])
        experiment = client.get_experiment(trace.info.experiment_id)
    assert trace.info.experiment_id == body["metadata"]["experiment_id"]
    assert experiment.name == "dspy-executions"
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.inputs == {"a": 2, "b": 2} and root.outputs["total"] == 4
    record = world["owner"]("GET", f"/v1/dspy/execution/{body['execution_id']}")
    assert record.status_code == 200, record.text
    assert record.json()["inputs"] == {"a": 2, "b": 2}
    assert record.json()["principal"].startswith("alice-")
    assert record.json()["trace_id"] == body["metadata"]["trace_id"]
    # Readable by its caller and admins only.
    assert world["bob"]("GET", f"/v1/dspy/execution/{body['execution_id']}").status_code == 404
    assert world["admin"]("GET", f"/v1/dspy/execution/{body['execution_id']}").status_code == 200
    # Bob may not read the program, so he may not run it either (hidden: 404,
    # as every resource he may not read).
    refused = world["bob"].execute(name, {"a": 1, "b": 1})
    assert refused.status_code == 404 and name in refused.text


def test_inputs_are_checked_and_unknown_programs_refused(world):
    owner = world["owner"]
    missing = owner.execute(world["names"]["sum"], {"a": 1})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "inputs", "b"]
    assert "'b'" in missing.json()["detail"][0]["msg"]
    assert owner.execute(f"nothing-{uuid.uuid4().hex[:6]}", {}).status_code == 404
    assert owner.execute(world["names"]["capital"], {"country": "x"},
                         mode="fast").status_code == 422


def test_failures_and_timeouts_answer_success_false(world):
    owner, names = world["owner"], world["names"]
    failed = owner.execute(names["failing"], {"country": "Atlantis"}).json()
    assert failed["success"] is False and failed["outputs"] is None
    assert "ValueError: no capital for Atlantis" in failed["error"]
    started = time.monotonic()
    slow = owner.execute(names["sleeping"], {"country": "x"}, timeout=3).json()
    assert time.monotonic() - started < 120  # the program sleeps 600 s
    assert slow["success"] is False and "timed out after 3 s" in slow["error"]


def test_batch_counts_and_bounded_items(world):
    owner = world["owner"]
    inputs = [{"country": "France"}, {"nation": "Spain"}, {"country": "Peru"}]
    batch = owner("POST", "/v1/dspy/execute/batch",
                  json={"program_id": world["names"]["capital"], "inputs_list": inputs})
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert (body["total"], body["successful"], body["failed"]) == (3, 2, 1)
    assert [r["success"] for r in body["results"]] == [True, False, True]
    assert body["results"][0]["outputs"] == {"capital": "Paris"}


def test_stats_health_cache_clear_and_audit(world):
    owner, admin = world["owner"], world["admin"]
    owner.execute(world["names"]["capital"], {"country": "France"})
    stats = owner("GET", "/v1/dspy/stats").json()
    assert stats["cache_enabled"] is True and stats["mlflow_tracking"] is True
    assert stats["statistics"]["total_executions"] >= 1
    assert 0 < stats["statistics"]["success_rate"] <= 1
    time.sleep(1)  # past the health cache
    health = requests.get(world["server"].url + "/api/v1/dspy/health", timeout=30)
    assert health.status_code == 200  # public
    assert health.json()["total_executions"] == stats["statistics"]["total_executions"]
    assert set(health.json()) == {"status", "total_executions", "success_rate"}
    assert owner("POST", "/v1/dspy/cache/clear").status_code == 403
    cleared = admin("POST", "/v1/dspy/cache/clear")
    assert cleared.status_code == 200 and "Cache cleared" in cleared.json()["message"]
    again = owner.execute(world["names"]["capital"], {"country": "France"}).json()
    assert again["outputs"] == {"capital": "Paris"}  # loaded anew after the clear
    engine = get_engine(to_sqlalchemy_url(world["server"].database_uri))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            audited = connection.execute(sa.select(audit_log.c.path).where(
                audit_log.c.path == "/api/v1/dspy/execute")).first()
        if audited:
            break
        time.sleep(0.5)
    assert audited, "executions are audited"


def test_routes_are_in_the_openapi_document(world):
    paths = requests.get(world["server"].url + "/api/openapi.json", timeout=30).json()["paths"]
    for path in ("/api/v1/dspy/programs", "/api/v1/dspy/execute", "/api/v1/dspy/execute/batch",
                 "/api/v1/dspy/execution/{execution_id}", "/api/v1/dspy/stats",
                 "/api/v1/dspy/cache/clear", "/api/v1/dspy/health"):
        assert path in paths, path


def test_the_default_trace_experiment_is_owned_by_no_caller(world):
    server, owner, bob = world["server"], world["owner"], world["bob"]
    alice_name, bob_name = world["users"]
    body = owner.execute(world["names"]["capital"], {"country": "France"}).json()
    experiment_id = body["metadata"]["experiment_id"]
    engine = get_engine(to_sqlalchemy_url(server.database_uri))
    with engine.connect() as connection:
        row = connection.execute(sa.select(owners.c.owner).where(
            owners.c.resource_type == "experiment",
            owners.c.resource_id == experiment_id)).first()
    assert row is None or row.owner is None  # server-owned, like MLflow's Default
    # Neither its first caller nor anyone else may manage (grant on) it.
    for api, name in ((owner, alice_name), (bob, bob_name)):
        granted = api("POST", "/3.0/mlflow/users/permissions/grant",
                      json={"username": name, "resource_type": "experiment",
                            "resource_id": experiment_id, "permission": "MANAGE"})
        assert granted.status_code == 403, granted.text
    # A read key runs programs into the default experiment, but creates none.
    reader = Api(server, server.create_key("read", owner=bob_name))
    assert reader.execute(world["names"]["capital"], {"country": "France"}).json()["success"]
    missing = f"bob-traces-{uuid.uuid4().hex[:6]}"
    refused = reader.execute(world["names"]["capital"], {"country": "France"},
                             experiment_name=missing)
    assert refused.status_code == 403 and "'write' scope" in refused.text
    with mlflow_client(server.url, world["admin"].headers["X-API-Key"]) as client:
        assert client.get_experiment_by_name(missing) is None
    # Nor does it write traces into an experiment of its choosing.
    named = reader.execute(world["names"]["capital"], {"country": "France"},
                           experiment_name="dspy-executions")
    assert named.status_code == 403 and "'write' scope" in named.text
    # Nor may a key holder take the shared experiment's name, created or not:
    # through MLflow's own API it is reserved for the server.
    with mlflow_client(server.url, bob.headers["X-API-Key"]) as client:
        with pytest.raises(mlflow.exceptions.MlflowException, match="reserved") as refused:
            client.create_experiment("dspy-executions")
        assert refused.value.get_http_status_code() == 403
        own = client.create_experiment(f"bobs-{uuid.uuid4().hex[:6]}")
        with pytest.raises(mlflow.exceptions.MlflowException, match="reserved"):
            client.rename_experiment(own, "dspy-executions")


def test_a_trace_goes_to_the_experiment_checked_never_to_a_later_holder_of_its_name(world):
    server, alice, bob = world["server"], world["owner"], world["bob"]
    program, tag = world["names"]["capital"], uuid.uuid4().hex[:6]
    name = f"team-{tag}"
    first = bob.execute(program, {"country": "France"}, experiment_name=name).json()
    bobs = first["metadata"]["experiment_id"]
    # Bob renames his experiment away; the name is free, and Alice's run makes it hers.
    with mlflow_client(server.url, bob.headers["X-API-Key"]) as client:
        client.rename_experiment(bobs, f"loot-{tag}")
    second = alice.execute(program, {"country": "Secretland"}, experiment_name=name).json()
    alices = second["metadata"]["experiment_id"]
    assert second["metadata"]["trace_id"] and alices != bobs
    with mlflow_client(server.url, world["admin"].headers["X-API-Key"]) as client:
        assert client.get_experiment(alices).name == name
        held = client.search_traces(locations=[bobs])
    assert [t.info.trace_id for t in held] == [first["metadata"]["trace_id"]]


def test_each_workspace_has_its_own_shared_trace_experiment(tmp_path_factory):
    """With MLflow workspaces on, a tenant that runs a program first neither
    takes the shared experiment into its workspace nor stops the others' traces."""
    from mlflow.utils import workspace_context

    db_file = tmp_path_factory.mktemp("dspy-ws-db") / "mlflow.db"
    server = start_server(tmp_path_factory, "dspy-ws", f"sqlite:///{db_file}", server="uvicorn",
                          extra_env={"MLFLOW_ENABLE_WORKSPACES": "true"})
    try:
        tag = uuid.uuid4().hex[:6]
        team = f"team-{tag}"
        admin = Api(server, server.admin_key)
        assert admin("POST", "/3.0/mlflow/workspaces", json={"name": team}).ok
        alice = Api(server, server.create_key("read,write", owner=f"alice-{tag}"))
        mallory_key = server.create_key("read,write", owner=f"mallory-{tag}", workspaces=team)
        mallory = Api(server, mallory_key)
        mallory.headers["X-MLFLOW-WORKSPACE"] = team
        with mlflow_client(server.url, alice.headers["X-API-Key"]):
            mlflow.set_experiment(f"programs-{tag}")
            with mlflow.start_run():
                dspy_programs.log(dspy_programs.predict("Paris"), f"capital-{tag}")
        workspace_context.set_workspace(team)
        try:
            with mlflow_client(server.url, mallory_key):
                mlflow.set_experiment(f"programs-{tag}")
                with mlflow.start_run():
                    # Another name: the registry index is not per workspace yet.
                    dspy_programs.log(dspy_programs.predict("Rome"), f"capital-team-{tag}")
        finally:
            workspace_context.set_workspace(None)
        first = mallory.execute(f"capital-team-{tag}", {"country": "Italy"}).json()
        second = alice.execute(f"capital-{tag}", {"country": "France"}).json()
        assert first["outputs"] == {"capital": "Rome"} and second["outputs"] == {"capital": "Paris"}
        assert first["metadata"]["trace_id"] and second["metadata"]["trace_id"]
        assert first["metadata"]["experiment_id"] != second["metadata"]["experiment_id"]
        found = admin("GET", "/2.0/mlflow/experiments/get-by-name",
                      params={"experiment_name": "dspy-executions"}).json()
        assert found["experiment"]["experiment_id"] == second["metadata"]["experiment_id"]
    finally:
        server.server.stop()
