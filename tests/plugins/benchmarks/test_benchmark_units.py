"""Benchmarks and the sandbox in-process: the fallback mode's empty environment,
the checks on what a sandboxed model answers, and which values are verified."""

from __future__ import annotations

import json
import types

import mlflow
import pandas as pd
import pytest

from mlflow_hokusai.errors import EvaluationRefused
from mlflow_hokusai.plugins import sandbox
from mlflow_hokusai.plugins.benchmarks import verified
from mlflow_hokusai.plugins.sandbox import launch

MODEL = """
import os
import mlflow.pyfunc
from mlflow.models import set_model

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [os.environ.get("SANDBOX_UNIT_SECRET", "absent")] * len(model_input)

set_model(Echo())
"""


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("echo")
    (folder / "echo.py").write_text(MODEL)
    mlflow.pyfunc.save_model(str(folder / "model"), python_model=str(folder / "echo.py"),
                             pip_requirements=[])
    return folder / "model"


def _settings(mode, timeout=120, memory_mb=4096):
    return types.SimpleNamespace(sandbox_mode=mode, sandbox_timeout_seconds=timeout,
                                 sandbox_memory_mb=memory_mb)


# Room for the runner (MLflow, pandas and pyarrow take about 450 MiB of address
# space), not for the model's extra GiB.
MEMORY_MB = 900
HUNGRY = """
import mlflow.pyfunc
from mlflow.models import set_model

class Hungry(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        hoard = bytearray(2 ** 30)
        return [len(hoard)] * len(model_input)

set_model(Hungry())
"""


@pytest.mark.parametrize("mode", ["process", "bwrap"])
def test_a_model_past_the_memory_limit_is_refused(tmp_path, mode):
    import shutil

    (tmp_path / "hungry.py").write_text(HUNGRY)
    mlflow.pyfunc.save_model(str(tmp_path / "model"), python_model=str(tmp_path / "hungry.py"),
                             pip_requirements=[])

    def run(memory_mb):
        return sandbox.predict(lambda target: shutil.copytree(tmp_path / "model", target,
                                                              dirs_exist_ok=True),
                               pd.DataFrame({"x": [1.0]}), _settings(mode, memory_mb=memory_mb))

    assert run(4096)[0] == [2 ** 30]  # the default limit has room for it
    with pytest.raises(EvaluationRefused) as refused:
        run(MEMORY_MB)
    assert refused.value.status == 422 and refused.value.extra["reason"] == \
        "the model's code raised the model exceeded the sandbox's memory limit"


@pytest.mark.parametrize("mode", ["process", "bwrap"])
def test_no_variable_of_the_server_reaches_the_model(echo_model, monkeypatch, mode):
    import shutil

    monkeypatch.setenv("SANDBOX_UNIT_SECRET", "leaked")
    predictions, used = sandbox.predict(
        lambda target: shutil.copytree(echo_model, target, dirs_exist_ok=True),
        pd.DataFrame({"x": [1.0, 2.0]}), _settings(mode))
    assert predictions == ["absent", "absent"]
    assert used in (("process", "process+netns") if mode == "process" else ("bwrap",))


def test_a_missing_sandbox_program_is_a_clear_refusal(monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "command", lambda *a: (["/nonexistent/bwrap"], str(tmp_path)))
    with pytest.raises(launch.Stopped, match="could not start"):
        launch.run("bwrap", str(tmp_path), timeout_seconds=5, memory_mb=64)


@pytest.mark.parametrize("answer, reason", [
    ("not json", "not JSON"),
    (json.dumps([1, 2]), "not an object"),
    (json.dumps({"predictions": [1]}), "no list of 2 predictions"),
    (json.dumps({"predictions": [1, {"a": 1}]}), "not plain numbers"),
    (json.dumps({"error": "ValueError: boom", "type": "ValueError"}), "raised ValueError"),
])
def test_what_the_model_answers_is_checked(tmp_path, answer, reason):
    path = tmp_path / "result.json"
    path.write_text(answer)
    with pytest.raises(EvaluationRefused) as refused:
        sandbox._result(str(path), 2, "process")
    assert reason in refused.value.extra["reason"] and refused.value.status == 422


def test_no_answer_is_a_refusal(tmp_path):
    with pytest.raises(EvaluationRefused, match="without an answer"):
        sandbox._result(str(tmp_path / "missing.json"), 2, "process")


def test_an_improvement_counts_only_when_both_values_are_verified(monkeypatch):
    recorded = {"m": {1: 0.5, 2: 0.7}}
    monkeypatch.setattr(verified, "latest", lambda engine, name, versions: recorded[name])
    rows = [{"model_name": "m", "version": 1, "benchmark_value": 0.5, "baseline_version": 1,
             "baseline_value": 0.5, "improvement": 0.0},
            {"model_name": "m", "version": 2, "benchmark_value": 0.7, "baseline_version": 1,
             "baseline_value": 0.5, "improvement": 0.2},
            {"model_name": "m", "version": 3, "benchmark_value": 0.9, "baseline_version": 2,
             "baseline_value": 0.7, "improvement": 0.2},
            {"model_name": "m", "version": 4, "benchmark_value": 0.7, "baseline_version": 3,
             "baseline_value": 0.9, "improvement": -0.2}]
    annotated = verified.annotate(None, rows)
    assert [(r["value_verified"], r["verified"]) for r in annotated] == \
        [(True, True), (True, True), (False, False), (False, False)]
    assert verified.verified_total(annotated) == pytest.approx(0.2)


def test_a_verified_improvement_takes_the_direction_of_the_tokens_benchmark(monkeypatch):
    monkeypatch.setattr(verified, "latest", lambda engine, name, versions: {1: 0.5, 2: 0.7})
    monkeypatch.setattr(verified, "benchmark_directions",
                        lambda engine, keys: {"tok": "higher"})
    # Tagged lower-is-better by someone with EDIT: the index scored it -0.2.
    rows = [{"model_name": "m", "version": 2, "benchmark_value": 0.7, "baseline_version": 1,
             "baseline_value": 0.5, "improvement": -0.2, "direction": "lower",
             "token_key": None, "model_token_key": "tok"},
            {"model_name": "m", "version": 3, "benchmark_value": 0.9, "baseline_version": 2,
             "baseline_value": 0.7, "improvement": -0.2, "direction": "lower",
             "token_key": "tok", "model_token_key": "tok"}]
    annotated = verified.annotate(None, rows)
    assert [(r["direction"], r["improvement"], r["verified"]) for r in annotated] == \
        [("higher", 0.2, True), ("lower", -0.2, False)]  # an unverified one shows its tags
    assert verified.verified_total(annotated) == 0.2


def test_evaluator_values_count_and_replacing_one_is_signalled(tmp_path, monkeypatch):
    import flask
    import sqlalchemy as sa

    from mlflow_hokusai import signals
    from mlflow_hokusai.db.schema import verified_values
    from mlflow_hokusai.plugins.benchmarks import hooks, measure

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hokusai.db'}")
    verified_values.create(engine)
    app = flask.Flask("units")
    app.extensions["hokusai"] = types.SimpleNamespace(engine=engine)
    principal = types.SimpleNamespace(username="svc", scopes=frozenset({"evaluator"}),
                                      label="key k1")
    monkeypatch.setattr(hooks, "current_principal", lambda: principal)
    monkeypatch.setattr(hooks, "_token_id", lambda name, version: "tok")
    events = []

    def receiver(sender, **event):
        events.append(event)

    signals.contribution_recorded.connect(receiver)
    try:
        with app.app_context():
            hooks.on_tag_set(None, model_name="m", version=2, value=0.7)
            token = measure.measuring.set(True)  # the registry's own tag write: no record
            hooks.on_tag_set(None, model_name="m", version=2, value=0.8)
            measure.measuring.reset(token)
            principal.scopes = frozenset({"write", "admin"})  # admin does not vouch
            hooks.on_tag_set(None, model_name="m", version=2, value=0.9)
    finally:
        signals.contribution_recorded.disconnect(receiver)
    assert verified.latest(engine, "m", [2]) == {2: 0.7}
    assert [(e["event"], e["token_id"], e["version"]) for e in events] == \
        [("benchmark_measured", "tok", 2), ("value_superseded", "tok", 2)]
    assert events[0]["data"]["source"] == "evaluator"
    assert events[1]["data"] == {"old_value": 0.7, "new_value": 0.9, "verified": False}
