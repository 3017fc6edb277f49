"""Monitoring in-process, on a SQLite database of Hokusai's tables: recorded
samples to a drift report (bounded reads), the scheduled check's results,
gauges and audit records, feedback to accuracy, and the pictures."""

from __future__ import annotations

import contextlib
import json
import time
import types

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.schema import prediction_samples
from mlflow_hokusai.plugins.monitoring import (
    checks,
    current,
    drift,
    outcomes,
    performance,
    plots,
    reference,
    schemas,
)
from mlflow_hokusai.plugins.serving import resolve
from mlflow_hokusai.plugins.serving.store import DeploymentStore
from mlflow_hokusai.settings import Settings

MODEL = "churn"


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    migrate.upgrade(engine)
    return engine


def training(rng, n=1000):
    return pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50, 15, n),
                         "plan": rng.choice(["basic", "pro"], n)})


def record(engine, frame, version=1, at=None):
    at = int(time.time() * 1000) if at is None else at
    with engine.begin() as connection:
        connection.execute(prediction_samples.insert(), [
            {"model_name": MODEL, "model_version": version, "sampled_at": at,
             "inputs": json.dumps(r), "outputs": "0"} for r in frame.to_dict("records")])


class Audit:
    def __init__(self):
        self.rows = []

    def record(self, row):
        self.rows.append(row)


@pytest.fixture
def hokusai(engine, monkeypatch):
    rng = np.random.default_rng(0)
    ref = training(rng)
    store = DeploymentStore(engine)
    row = store.create(MODEL, 1, None, 1, "reference.csv", "alice")
    columns = [{"name": "age", "type": "double"}, {"name": "income", "type": "double"},
               {"name": "plan", "type": "string"}]
    store.update(row.id, resolved_version=1, signature=json.dumps(columns), status="ready")
    monkeypatch.setattr(resolve, "version_of", lambda name, version, alias: version)
    monkeypatch.setattr(reference, "resolve", lambda name, version, explicit, settings:
                        reference.Reference(ref, "deployment", explicit, reference.digest(ref)))
    settings = Settings(monitoring_max_rows=2000, monitoring_min_samples=30)
    return types.SimpleNamespace(engine=engine, settings=settings, audit=Audit(),
                                 serving=types.SimpleNamespace(store=store), rng=rng)


def test_a_report_of_recorded_samples_names_its_reference_and_window(hokusai):
    record(hokusai.engine, training(hokusai.rng, 300))
    now = int(time.time() * 1000) + 1
    result = drift.build(hokusai, MODEL, "1", None, "auto", None, now - 3_600_000, now)
    report = result.report
    assert report["features_checked"] == 3 and report["overall_drift"] is False
    assert report["reference"]["source"] == "deployment"
    assert report["reference"]["uri"] == "reference.csv"
    assert len(report["reference"]["digest"]) == 64
    assert report["features"]["plan"]["method"] == "chi2"
    assert report["recorded_in_window"] == 300 and report["current_size"] == 300
    # Samples before the window are not in it.
    earlier = drift.build(hokusai, MODEL, "1", None, "auto", None, now - 7_200_000,
                          now - 3_600_000)
    assert earlier.report["status"] == "insufficient_data"
    assert earlier.report["overall_drift"] is None


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """Reference files under HOKUSAI_EVALUATION_DATA_ROOT, the model's version
    tags stubbed, and no run dataset to fall back on."""
    tags: dict[str, str] = {}
    monkeypatch.setattr(reference.registry, "get_version",
                        lambda name, version: types.SimpleNamespace(tags=tags))
    monkeypatch.setattr(reference.datasets, "logged_inputs", lambda name, version: [])
    reference._read_in_period.cache_clear()
    yield types.SimpleNamespace(path=tmp_path, tags=tags, settings=Settings(
        evaluation_data_root=str(tmp_path), monitoring_max_rows=10_000))
    reference._read_in_period.cache_clear()


def test_the_deployment_reference_dataset_comes_first(data_root):
    frame = training(np.random.default_rng(2), 200)
    frame.to_csv(data_root.path / "deployed.csv", index=False)
    frame.iloc[:100].to_csv(data_root.path / "tagged.csv", index=False)
    data_root.tags[reference.VERSION_TAG] = "tagged.csv"
    used = reference.resolve(MODEL, 1, "deployed.csv", data_root.settings)
    assert used.describe() == {"source": "deployment", "uri": "deployed.csv",
                               "digest": reference.digest(pd.read_csv(
                                   data_root.path / "deployed.csv")),
                               "mlflow_digest": None, "rows": 200}


def test_a_replaced_reference_file_is_read_again_after_a_while(data_root, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(reference, "clock", lambda: now[0])
    path = data_root.path / "reference.csv"
    first, second = (training(np.random.default_rng(seed), 50) for seed in (3, 4))
    first.to_csv(path, index=False)
    before = reference.resolve(MODEL, 1, "reference.csv", data_root.settings).digest
    second.to_csv(path, index=False)
    assert reference.resolve(MODEL, 1, "reference.csv", data_root.settings).digest == before
    now[0] += reference.REREAD_SECONDS
    after = reference.resolve(MODEL, 1, "reference.csv", data_root.settings).digest
    assert after == reference.digest(pd.read_csv(path)) != before


def test_the_version_tag_names_the_reference_and_formats_agree_on_its_digest(data_root):
    frame = training(np.random.default_rng(3), 150)
    frame.to_csv(data_root.path / "train.csv", index=False)
    frame.to_parquet(data_root.path / "train.parquet", index=False)
    data_root.tags[reference.VERSION_TAG] = "train.csv"
    from_csv = reference.resolve(MODEL, 1, None, data_root.settings)
    assert (from_csv.source, from_csv.uri, len(from_csv.frame)) == ("version_tag", "train.csv", 150)
    data_root.tags[reference.VERSION_TAG] = "train.parquet"
    from_parquet = reference.resolve(MODEL, 1, None, data_root.settings)
    assert from_parquet.source == "version_tag" and from_parquet.uri == "train.parquet"
    assert from_parquet.digest == from_csv.digest and len(from_csv.digest) == 64
    frame.iloc[:149].to_parquet(data_root.path / "fewer.parquet", index=False)
    data_root.tags[reference.VERSION_TAG] = "fewer.parquet"
    assert reference.resolve(MODEL, 1, None, data_root.settings).digest != from_csv.digest


def test_no_reference_at_all_is_404_naming_the_ways_to_give_one(data_root):
    from mlflow_hokusai.errors import NotFound

    with pytest.raises(NotFound) as missing:
        reference.resolve(MODEL, 1, None, data_root.settings)
    assert reference.VERSION_TAG in str(missing.value.detail)


def test_a_large_window_is_read_as_a_bounded_sample_that_periodic_traffic_cannot_fool(engine):
    rng = np.random.default_rng(1)
    rows = training(rng, 5000)
    rows["plan"] = ["basic", "pro"] * 2500  # alternating: every k-th id (k even) sees one
    record(engine, rows)
    frame, total = current.window(engine, MODEL, 1, 0, 2**62, 1000)
    assert total == 5000
    assert 850 <= len(frame) <= 1000
    assert list(frame.columns) == ["age", "income", "plan"]
    assert 0.4 < (frame["plan"] == "pro").mean() < 0.6
    again, _ = current.window(engine, MODEL, 1, 0, 2**62, 1000)
    assert again.equals(frame)  # the same rows each time


def test_a_sample_that_is_no_json_object_is_skipped(engine):
    record(engine, pd.DataFrame({"age": [30.0, 40.0]}))
    with engine.begin() as connection:
        connection.execute(prediction_samples.insert(), [
            {"model_name": MODEL, "model_version": 1, "sampled_at": 1, "inputs": text}
            for text in ("not json", "[1, 2]")])
    frame, total = current.window(engine, MODEL, 1, 0, 2**62, 100)
    assert total == 4 and frame["age"].tolist() == [30.0, 40.0]


def arrive(engine, frame):
    """New inputs replace the window's, and the checks are due at once."""
    with engine.begin() as connection:
        connection.execute(prediction_samples.delete())
        connection.execute(sa.text("UPDATE hokusai_drift_checks SET next_run_at = 0"))
    record(engine, frame)


def test_the_scheduled_check_stores_exports_and_audits_drift_changes(hokusai):
    from prometheus_client import REGISTRY

    engine = hokusai.engine
    body = schemas.CheckBody(version="1", interval_minutes=0.05, period_hours=1, threshold=0.01,
                             features=["age", "plan"])
    runner = checks.Checks(hokusai)
    assert runner.put(MODEL, body, "alice")["threshold"] == 0.01
    record(engine, training(hokusai.rng, 300))
    runner.tick()
    [first] = runner.results(MODEL)
    assert first["error"] is None
    assert first["overall_drift"] is False
    assert REGISTRY.get_sample_value("hokusai_model_drifted", {"model": MODEL}) == 0
    assert hokusai.audit.rows == []
    # Drifted inputs arrive: older samples leave the window.
    shifted = training(hokusai.rng, 300)
    shifted["age"] += 15
    arrive(engine, shifted)
    runner.tick()
    latest = runner.results(MODEL)[0]
    assert latest["overall_drift"] is True
    assert latest["report"]["drifted_features"] == ["age"]
    assert REGISTRY.get_sample_value("hokusai_model_drifted", {"model": MODEL}) == 1
    assert REGISTRY.get_sample_value("hokusai_feature_drifted",
                                     {"model": MODEL, "feature": "age"}) == 1
    assert REGISTRY.get_sample_value("hokusai_feature_drift_statistic",
                                     {"model": MODEL, "feature": "age"}) == pytest.approx(
        latest["report"]["features"]["age"]["statistic"])
    assert [r["action"] for r in hokusai.audit.rows] == ["DRIFT_STARTED age"]
    assert hokusai.audit.rows[0]["model_name"] == MODEL
    # Not due: nothing runs.
    runner.tick()
    assert len(runner.results(MODEL)) == 2
    # In-distribution inputs again: the feature stops drifting.
    arrive(engine, training(hokusai.rng, 300))
    runner.tick()
    assert runner.results(MODEL)[0]["overall_drift"] is False
    assert [r["action"] for r in hokusai.audit.rows] == ["DRIFT_STARTED age", "DRIFT_STOPPED age"]
    assert REGISTRY.get_sample_value("hokusai_model_drifted", {"model": MODEL}) == 0
    assert REGISTRY.get_sample_value("hokusai_feature_drifted",
                                     {"model": MODEL, "feature": "age"}) == 0


def test_a_check_without_a_deployment_stores_the_reason(hokusai, monkeypatch):
    from mlflow_hokusai.errors import NotFound

    def missing(*args):
        raise NotFound("No deployment serves it")

    monkeypatch.setattr(resolve, "deployment_for", missing)
    runner = checks.Checks(hokusai)
    runner.put(MODEL, schemas.CheckBody(), None)
    runner.tick()
    [result] = runner.results(MODEL)
    assert result["error"] == "No deployment serves it" and result["report"] is None


def test_a_failing_check_stores_its_error_and_the_other_due_checks_still_run(
        hokusai, monkeypatch, caplog):
    built = drift.build

    def build(hokusai, model_name, *args):
        if model_name == "broken":
            raise RuntimeError("reference file truncated")
        return built(hokusai, model_name, *args)

    monkeypatch.setattr(drift, "build", build)
    record(hokusai.engine, training(hokusai.rng, 300))
    runner = checks.Checks(hokusai)
    for name in ("broken", MODEL):  # both due now
        runner.put(name, schemas.CheckBody(version="1"), None)
    with caplog.at_level("ERROR", logger=checks.__name__):
        runner.tick()
    [failed] = runner.results("broken")
    assert failed["error"] == "RuntimeError: reference file truncated"
    assert failed["report"] is None
    assert "reference file truncated" in caplog.text
    [ran] = runner.results(MODEL)
    assert ran["error"] is None and ran["overall_drift"] is False


def test_a_check_failing_outside_its_report_does_not_stop_the_next(hokusai, monkeypatch):
    record(hokusai.engine, training(hokusai.rng, 300))
    runner = checks.Checks(hokusai)
    for name in ("broken", MODEL):
        runner.put(name, schemas.CheckBody(version="1"), None)
    previous = runner._previous

    def unreadable(model_name):
        if model_name == "broken":
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))
        return previous(model_name)

    monkeypatch.setattr(runner, "_previous", unreadable)
    runner.tick()
    assert runner.results("broken") == []
    assert runner.results(MODEL)[0]["overall_drift"] is False


class SecondHost:
    """This host's view of the shared database, with another host ticking
    once right after this one has read which checks are due (the first
    connection it closes)."""

    def __init__(self, engine, other):
        self.engine, self.other = engine, other

    def __getattr__(self, name):
        return getattr(self.engine, name)

    @contextlib.contextmanager
    def connect(self):
        with self.engine.connect() as connection:
            yield connection
        other, self.other = self.other, None
        if other is not None:
            other.tick()


def test_a_due_check_runs_on_one_host_only(hokusai):
    record(hokusai.engine, training(hokusai.rng, 300))
    first = checks.Checks(hokusai)
    first.put(MODEL, schemas.CheckBody(version="1"), None)
    late = checks.Checks(types.SimpleNamespace(
        **{**vars(hokusai), "engine": SecondHost(hokusai.engine, first)}))
    late.tick()  # read the check as due, then found it claimed by the first host
    [result] = first.results(MODEL)
    assert result["error"] is None


def _served(log, request_id, predictions, error=None, records=None):
    log.on_prediction(None, model_name=MODEL, version=1, request_id=request_id,
                      records=records or len(predictions or [0]), predictions=predictions,
                      latency_ms=10.0, error=error, user="alice")


def test_feedback_yields_accuracy_errors_and_latency(engine):
    log = outcomes.Outcomes(engine)
    _served(log, "r1", [1, 0, 1])
    _served(log, "r2", [2])
    _served(log, "r3", None, error="GATEWAY_TIMEOUT", records=1)
    log.flush()
    log.set_truth(log.find("r1").id, [1, 1, 1], "alice")
    log.set_truth(log.find("r2").id, [2], "alice")
    now = int(time.time() * 1000) + 1
    report = performance.report(engine, MODEL, None, now - 3_600_000, now, 1000)
    assert report["requests"] == 3 and report["errors"] == 1
    assert report["error_rate"] == pytest.approx(1 / 3)
    assert report["latency_ms"]["count"] == 2 and report["latency_ms"]["p50"] == 10.0
    assert report["quality"] == {"task": "classification", "labelled": 4, "accuracy": 0.75}
    assert report["hourly"][0]["quality"]["accuracy"] == 0.75


def test_regression_feedback_gives_mae_and_rmse():
    got = performance.quality([(1.5, 1.0), (2.0, 3.0)])
    assert got["task"] == "regression"
    assert got["mae"] == pytest.approx(0.75)
    assert got["rmse"] == pytest.approx(np.sqrt((0.25 + 1.0) / 2))
    assert performance.quality([("cat", "cat"), ("dog", "cat")])["accuracy"] == 0.5


def test_the_pictures_show_every_feature(hokusai):
    shifted = training(hokusai.rng, 200)
    shifted["income"] += 20
    record(hokusai.engine, shifted)
    now = int(time.time() * 1000) + 1
    result = drift.build(hokusai, MODEL, "1", None, "auto", None, now - 3_600_000, now)
    page = plots.render(result)
    assert page.count("data:image/png;base64,") == 3
    assert "Drift detected" in page and "<tr class='drifted'><td>income</td>" in page
    image = plots.feature_png(result, "plan")
    assert image.startswith(b"\x89PNG")


@pytest.mark.parametrize("query, field", [
    ({"period_hours": "0"}, "period_hours"), ({"method": "wasserstein"}, "method"),
    ({"threshold": "2"}, None), ({"format": "png"}, None), ({"version": "v1"}, "version"),
    ({"since": "2026-01-02T00:00:00", "until": "2026-01-01T00:00:00"}, None),
    ({"since": "2026-01-01T00:00:00", "period_hours": "3"}, None)])
def test_drift_queries_are_validated(query, field):
    import pydantic

    with pytest.raises(pydantic.ValidationError) as refused:
        schemas.DriftQuery.model_validate(query)
    if field:
        assert refused.value.errors()[0]["loc"][0] == field


def test_features_may_be_listed_with_commas_or_repeated():
    assert schemas.DriftQuery.model_validate({"features": "a, b"}).features == ["a", "b"]
    assert schemas.DriftQuery.model_validate({"features": ["a", "b,c"]}).features == \
        ["a", "b", "c"]


@pytest.fixture
def client(hokusai, monkeypatch):
    """The monitoring blueprint in a bare Flask app: no gate (no principal, so
    the view's own permission checks pass), the model taken to exist."""
    import flask

    from mlflow_hokusai.plugins.monitoring import Monitoring, views

    monkeypatch.setattr(views, "_model", lambda model_id: None)
    hokusai.monitoring = Monitoring(outcomes.Outcomes(hokusai.engine), checks.Checks(hokusai))
    hokusai.authorizer = None
    app = flask.Flask(__name__)
    app.extensions["hokusai"] = hokusai
    app.register_blueprint(views.blueprint)
    return app.test_client()


def test_the_drift_route_answers_json_html_and_png(hokusai, client):
    shifted = training(hokusai.rng, 200)
    shifted["plan"] = "enterprise"  # a category the training data never had
    record(hokusai.engine, shifted)
    report = client.get(f"/api/v1/monitoring/{MODEL}/drift?version=1&threshold=0.01").get_json()
    assert report["drifted_features"] == ["plan"] and report["deployment_id"]
    only = client.get(f"/v1/monitoring/{MODEL}/drift?version=1&features=age").get_json()
    assert list(only["features"]) == ["age"]
    page = client.get(f"/api/v1/monitoring/{MODEL}/drift?version=1&format=html")
    assert page.mimetype == "text/html" and b"Drift detected" in page.data
    image = client.get(f"/api/v1/monitoring/{MODEL}/drift?version=1&format=png&feature=plan")
    assert image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")


@pytest.mark.parametrize("query, field", [
    ("features=nope", "features"), ("format=png&feature=nope", "feature"),
    ("method=x", "method"), ("period_hours=-1", "period_hours")])
def test_bad_drift_parameters_are_422_naming_the_field(client, query, field):
    answer = client.get(f"/api/v1/monitoring/{MODEL}/drift?version=1&{query}")
    assert answer.status_code == 422, answer.data
    assert field in json.dumps(answer.get_json())


def test_feedback_through_the_route(hokusai, client):
    log = hokusai.monitoring.outcomes
    _served(log, "req-1", ["a", "b"])
    _served(log, "req-2", None, error="BAD_GATEWAY", records=1)
    log.flush()
    url = f"/api/v1/monitoring/{MODEL}/feedback"
    assert client.post(url, json={"request_id": "req-9", "true_value": "a"}).status_code == 404
    assert client.post(url, json={"request_id": "req-2", "true_value": "a"}).status_code == 409
    wrong = client.post(url, json={"request_id": "req-1", "true_value": "a"})
    assert wrong.status_code == 422 and "true_value" in wrong.get_data(as_text=True)
    extra = client.post(url, json={"request_id": "req-1", "true_value": ["a", "a"], "x": 1})
    assert extra.status_code == 422
    assert client.post(url, json={"request_id": "req-1",
                                  "true_value": ["a", "a"]}).get_json()["records"] == 2
    other_model = "/api/v1/monitoring/other/feedback"
    assert client.post(other_model, json={"request_id": "req-1",
                                          "true_value": ["a", "a"]}).status_code == 404
    report = client.get(f"/api/v1/monitoring/{MODEL}/performance?period_hours=1").get_json()
    assert report["quality"]["accuracy"] == 0.5 and report["errors"] == 1


def test_the_schedule_routes(client):
    url = f"/api/v1/monitoring/{MODEL}/schedule"
    assert client.get(url).status_code == 404
    bad = client.put(url, json={"interval_minutes": 0.01})
    assert bad.status_code == 422 and "interval_minutes" in bad.get_data(as_text=True)
    put = client.put(url, json={"version": "1", "method": "psi"})
    assert put.status_code == 200 and put.get_json()["threshold"] == 0.2
    assert client.get(url).get_json()["method"] == "psi"
    assert client.delete(url).status_code == 200 and client.get(url).status_code == 404
