"""DSPy execution without a server: real programs saved with mlflow.dspy, run
in their sandboxed processes by the Executor, with records in a real database.
Covers input checks, outputs of Predict and ChainOfThought, a raising and a
sleeping program, batch accounting, records, retention, statistics, the LRU
cache, alias moves and the server's LM reached through the process channel."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from types import SimpleNamespace
from typing import ClassVar

import flask
import pytest
import sqlalchemy as sa

from mlflow_hokusai.db import migrate
from mlflow_hokusai.errors import NotFound, Unsupported, ValidationFailed
from mlflow_hokusai.plugins import dspy as dspy_plugin
from mlflow_hokusai.plugins.dspy import files, lm, records, views
from mlflow_hokusai.plugins.dspy.executor import Executor, parse_program_id
from mlflow_hokusai.plugins.sandbox import launch
from mlflow_hokusai.settings import Settings
from tests.support import dspy_programs

PROGRAMS = ("predict", "chain_of_thought", "failing", "sleeping")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each test program saved with mlflow.dspy.save_model; "paris" and
    "rome" are two versions of one program answering differently."""
    root = tmp_path_factory.mktemp("programs")
    paths = {}
    for name in PROGRAMS:
        dspy_programs.save(getattr(dspy_programs, name)(), root / name)
        paths[name] = root / name
    dspy_programs.save(dspy_programs.predict("Rome"), root / "rome")
    paths["rome"] = root / "rome"
    return paths


def _settings(**values) -> Settings:
    defaults = {"dspy_cache_size": 8, "dspy_batch_concurrency": 2, "dspy_timeout_seconds": 30.0,
                "dspy_max_timeout_seconds": 60.0, "dspy_load_timeout_seconds": 120.0}
    return Settings(**{**defaults, **values})


@pytest.fixture
def store(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    migrate.upgrade(engine)
    return records.ExecutionStore(engine, 30.0)


@pytest.fixture
def make_executor(saved, store, monkeypatch):
    """An Executor whose program (name, version) is the saved program ``name``
    (version 2 of "capital" is "rome"); stopped after the test."""
    made = []
    directory = {("capital", 1): saved["predict"], ("capital", 2): saved["rome"]}
    monkeypatch.setattr(files, "program_copy", lambda root, name, version:
                        directory.get((name, version), saved.get(name)))
    monkeypatch.setattr(files, "is_program", lambda name, version: True)

    def make(resolver=lambda name, ref: 1, **settings):
        executor = Executor(_settings(**settings), store, resolver,
                            call_lm=settings.get("dspy_lm") and lm.caller(_settings(**settings)),
                            sandbox=launch.mode("auto"))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.cache.clear()


def _run(executor, name, inputs, mode="normal", timeout=30.0, principal="alice"):
    key = (name, 1)
    executor.check(key, inputs, ["body", "inputs"])
    return executor.run(key, inputs, mode, timeout, principal)


def test_program_ids_name_a_version_or_an_alias():
    assert parse_program_id("qa") == ("qa", None)
    assert parse_program_id("qa:3") == ("qa", "3")
    assert parse_program_id("qa@champion") == ("qa", "@champion")
    assert parse_program_id("team:qa") == ("team:qa", None)  # not a version number


def test_predict_and_chain_of_thought_outputs(make_executor, store):
    executor = make_executor()
    answer = _run(executor, "predict", {"country": "France"})
    assert answer["success"] is True and answer["error"] is None
    assert answer["outputs"] == {"capital": "Paris"}
    assert answer["program_name"] == "predict" and answer["metadata"]["version"] == 1
    assert "trace" not in answer["metadata"]

    thought = _run(executor, "chain_of_thought", {"a": 2, "b": 2}, mode="debug")
    assert thought["outputs"] == {"reasoning": "2 plus 2 is 4", "total": 4}
    [call] = thought["metadata"]["trace"]
    assert call["inputs"] == {"a": 2, "b": 2} and call["outputs"]["total"] == 4

    record = store.get(thought["execution_id"])
    assert (record.model_name, record.version, record.mode, record.principal) == \
        ("chain_of_thought", 1, "debug", "alice")
    assert record.inputs == {"a": 2, "b": 2} and record.outputs["total"] == 4
    assert record.success and record.execution_time > 0


def test_signatures_describe_the_program(make_executor):
    description = make_executor().cache.describe(("chain_of_thought", 1))
    assert description["input_fields"] == ["a", "b"]
    [signature] = description["signatures"]
    assert [f["name"] for f in signature["input_fields"]] == ["a", "b"]
    assert [(f["name"], f["type"]) for f in signature["output_fields"]] == \
        [("reasoning", "str"), ("total", "int")]
    assert description["description"] == "Add two whole numbers."


def test_inputs_are_checked_against_the_program(make_executor, store):
    executor = make_executor()
    with pytest.raises(ValidationFailed) as refused:
        _run(executor, "chain_of_thought", {"a": 1, "c": 3})
    assert [(p["loc"], p["type"]) for p in refused.value.detail] == [
        (["body", "inputs", "b"], "missing"), (["body", "inputs", "c"], "extra_forbidden")]
    assert "Field 'b' is required" in refused.value.detail[0]["msg"]
    assert store.statistics()["total_executions"] == 0  # nothing ran


def test_a_raising_program_fails_with_its_error(make_executor, store):
    answer = _run(make_executor(), "failing", {"country": "Atlantis"})
    assert answer["success"] is False and answer["outputs"] is None
    assert "ValueError: no capital for Atlantis" in answer["error"]
    assert store.get(answer["execution_id"]).error == answer["error"]


def test_timeout_answers_failure_and_kills_the_process(make_executor, store):
    executor = make_executor()
    key = ("sleeping", 1)
    executor.cache.describe(key)  # loaded: the time limit covers only the run
    [process] = executor.cache.idle[key]
    started = time.monotonic()
    answer = executor.run(key, {"country": "x"}, "normal", 2.0, "alice")
    assert time.monotonic() - started < 30  # not the program's 600 s
    assert answer["success"] is False and "timed out after 2 s" in answer["error"]
    assert not process.alive  # the work was stopped, not left running
    assert executor.cache.idle[key] == []  # and never reused
    assert store.get(answer["execution_id"]).success is False


def test_batch_counts_items_and_survives_failures(make_executor, store):
    executor = make_executor()
    answer = executor.batch(("predict", 1), [{"country": "France"}, {}, {"country": "Spain"}],
                            "normal", 30.0, "bob")
    assert (answer["total"], answer["successful"], answer["failed"]) == (3, 2, 1)
    good, bad, other = answer["results"]
    assert good["outputs"] == {"capital": "Paris"} and other["success"]
    assert bad["success"] is False and "Field 'country' is required" in bad["error"]
    assert store.get(good["execution_id"]).batch_id == answer["batch_id"]
    failing = executor.batch(("failing", 1), [{"country": "a"}, {"country": "b"}], "normal",
                             30.0, "bob")
    assert (failing["total"], failing["successful"], failing["failed"]) == (2, 0, 2)


def test_a_server_error_fails_only_its_batch_item(make_executor, monkeypatch):
    executor = make_executor()
    run = executor.run

    def flaky(key, inputs, *args):
        if inputs["country"] == "Nowhere":
            raise OSError("artifact store unreachable")
        return run(key, inputs, *args)

    monkeypatch.setattr(executor, "run", flaky)
    answer = executor.batch(("predict", 1), [{"country": "France"}, {"country": "Nowhere"},
                                             {"country": "Spain"}], "normal", 30.0, "bob")
    assert (answer["total"], answer["successful"], answer["failed"]) == (3, 2, 1)
    failed = answer["results"][1]
    assert failed["success"] is False and failed["execution_id"] is None
    assert "internal error" in failed["error"] and "unreachable" not in failed["error"]


def test_statistics_and_retention(make_executor, store):
    executor = make_executor()
    _run(executor, "predict", {"country": "France"})
    _run(executor, "failing", {"country": "x"})
    statistics = store.statistics()
    assert statistics["total_executions"] == 2 and statistics["success_rate"] == 0.5
    assert statistics["average_execution_time"] > 0
    old = records.Execution(records.new_id(), "predict", 1, "normal", True, {}, {}, None, 1.0,
                            "alice", created_at=int((time.time() - 40 * 86400) * 1000))
    store.add(old)
    assert store.expire(30.0) == 1 and store.get(old.id) is None
    assert store.statistics()["total_executions"] == 2


def test_cache_is_bounded_least_recently_used(make_executor):
    executor = make_executor(dspy_cache_size=2)
    _run(executor, "predict", {"country": "France"})
    [first] = executor.cache.idle[("predict", 1)]
    _run(executor, "chain_of_thought", {"a": 1, "b": 2})
    _run(executor, "predict", {"country": "France"})  # now the most recently used
    assert executor.cache.idle[("predict", 1)] == [first]  # reused, not reloaded
    _run(executor, "failing", {"country": "x"})
    assert executor.cache.keys() == [("predict", 1), ("failing", 1)]
    assert first.alive
    assert executor.cache.clear() == 2 and executor.cache.keys() == []
    assert not first.alive


def test_cache_follows_alias_moves(make_executor):
    aliases = {"@champion": 1}
    executor = make_executor(resolver=lambda name, ref: aliases[ref])
    key = executor.program("capital@champion")
    assert executor.run(key, {"country": "x"}, "normal", 30.0, None)["outputs"] == \
        {"capital": "Paris"}
    aliases["@champion"] = 2
    key = executor.program("capital@champion")
    assert key == ("capital", 2)
    assert executor.run(key, {"country": "x"}, "normal", 30.0, None)["outputs"] == \
        {"capital": "Rome"}


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible chat completions server that answers in DSPy's
    chat format and remembers each request's headers and body."""

    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeOpenAI.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
        content = "[[ ## capital ## ]]\nBerlin\n\n[[ ## completed ## ]]"
        answer = json.dumps({"id": "x", "object": "chat.completion", "created": 0,
                             "model": body["model"],
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant",
                                                      "content": content}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                       "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server_lm(make_executor, saved, tmp_path, monkeypatch):
    """start(handler): an Executor whose programs call the server's LM, a fake
    OpenAI-compatible server answering with ``handler`` on 127.0.0.1; its
    program "lm-program" is a Predict saved without an LM of its own."""
    import dspy

    monkeypatch.setenv("OPENAI_API_KEY", "sk-server-only")
    dspy_programs.save((dspy.Predict(dspy_programs.Capital), None), tmp_path / "lm-program")
    saved["lm-program"] = tmp_path / "lm-program"
    servers = []

    def start(handler):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return make_executor(dspy_lm="openai/fake-model",
                             dspy_lm_api_base=f"http://127.0.0.1:{server.server_port}/v1")

    yield start
    for server in servers:
        server.shutdown()


def test_programs_call_the_servers_lm_without_its_key(server_lm):
    answer = _run(server_lm(_FakeOpenAI), "lm-program", {"country": "Germany"})
    assert answer["success"], answer["error"]
    assert answer["outputs"] == {"capital": "Berlin"}
    headers, body = _FakeOpenAI.seen[-1]
    assert body["model"] == "fake-model" and "Germany" in json.dumps(body["messages"])
    # The server made the call with its own key; the program's process never had it.
    assert headers["authorization"] == "Bearer sk-server-only"


class _SlowOpenAI(_FakeOpenAI):
    """Answers after 30 s; not at all once the test sets ``release`` (it has
    given up on the answer by then)."""

    release = threading.Event()

    def do_POST(self):
        if not _SlowOpenAI.release.wait(30):
            super().do_POST()


def test_timeout_holds_while_the_lm_call_is_in_flight(server_lm):
    executor = server_lm(_SlowOpenAI)
    key = ("lm-program", 1)
    executor.cache.describe(key)  # loaded: the time limit covers only the run
    started = time.monotonic()
    try:
        answer = executor.run(key, {"country": "Germany"}, "normal", 2.0, "alice")
        elapsed = time.monotonic() - started
    finally:
        _SlowOpenAI.release.set()
    assert elapsed < 15  # ended rather than waited for the LM's 30 s
    assert answer["success"] is False and "timed out after 2 s" in answer["error"]


def test_without_dspy_every_route_answers_501(store):
    app = flask.Flask(__name__)
    service = dspy_plugin.DspyService(_settings(), store, None, None)
    app.extensions["hokusai"] = SimpleNamespace(dspy=service)
    with app.app_context(), pytest.raises(Unsupported) as refused:
        views.service()
    assert "pip install 'mlflow-hokusai[dspy]'" in refused.value.detail


def test_a_version_that_is_no_program_is_not_found(make_executor, monkeypatch):
    executor = make_executor()
    monkeypatch.setattr(files, "is_program", lambda name, version: False)
    with pytest.raises(NotFound, match="not a DSPy program"):
        executor.program("sklearn-model")


def test_program_processes_get_no_server_environment(make_executor, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-for-programs")
    executor = make_executor()
    executor.cache.describe(("predict", 1))
    [process] = executor.cache.idle[("predict", 1)]
    pid = process.child.pid
    with open(f"/proc/{pid}/environ", "rb") as handle:
        environ = handle.read().decode(errors="replace")
    assert "never-for-programs" not in environ and "OPENAI" not in environ
    assert os.getpgid(pid) == pid  # a session of its own: killed as a group


class _FakeProcess:
    def __init__(self, key):
        self.key, self.alive, self.description = key, True, {"input_fields": []}

    def stop(self):
        self.alive = False


def test_cache_keeps_at_most_per_key_idle_processes():
    from mlflow_hokusai.plugins.dspy.cache import ProgramCache

    cache = ProgramCache(2, _FakeProcess, per_key=2)
    key = ("p", 1)
    with cache.checkout(key) as a, cache.checkout(key) as b, cache.checkout(key) as c:
        assert len({id(a), id(b), id(c)}) == 3  # concurrent calls get processes of their own
    # Returned last to first: c and b are pooled, a (past per_key) is stopped.
    assert cache.idle[key] == [c, b] and not a.alive and b.alive and c.alive
    with cache.checkout(key) as again:
        assert again is b  # an idle one is reused
    assert (cache.hits, cache.misses) == (1, 3)


def test_is_program_asks_again_after_a_store_failure(tmp_path, monkeypatch):
    """A version whose store failed to list is reported as no program for that
    call only; a definite answer (a dspy flavor or none) is kept."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    from mlflow_hokusai.plugins.models import artifacts

    program, plain = tmp_path / "program", tmp_path / "plain"
    program.mkdir()
    plain.mkdir()
    (program / "MLmodel").write_text("flavors:\n  dspy: {}\n  python_function: {}\n")
    (plain / "data.bin").write_bytes(b"x")
    listings = []

    class Flaky(LocalArtifactRepository):
        failures = 1

        def list_artifacts(self, path=None):
            listings.append(self.artifact_dir)
            if Flaky.failures:
                Flaky.failures -= 1
                raise OSError("store unreachable")
            return super().list_artifacts(path)

    monkeypatch.setattr(artifacts, "version_repository", lambda name, version: (
        Flaky(str(program if name == "program" else plain)), ""))
    files._is_program.cache_clear()
    assert files.is_program("program", 1) is False  # the store failed: unknown
    assert files.is_program("program", 1) is True  # asked again, and kept
    assert files.is_program("program", 1) is True
    assert files.is_program("plain", 1) is False
    assert files.is_program("plain", 1) is False
    assert len(listings) == 3  # the failure, then one listing per version
    files._is_program.cache_clear()
