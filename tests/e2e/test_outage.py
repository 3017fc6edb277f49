"""Real outages: the backend PostgreSQL cluster (a throwaway one, killed and
restarted) and the artifact store (a real S3 server, killed and restarted)."""

import threading
import time
import uuid

import pytest
import requests
from mlflow import MlflowClient

from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests.support.s3server import S3Server
from tests.support.servers import MlflowServer

# Public health answers are cached per worker (1 s by default); these tests read
# them right after killing a backend.
FRESH_HEALTH = {"HOKUSAI_HEALTH_CACHE_SECONDS": "0.001"}


@pytest.fixture(scope="module")
def cluster(throwaway_postgres):
    return throwaway_postgres


@pytest.fixture(scope="module")
def server(tmp_path_factory, cluster):
    # MLflow's data and the keys both live on the cluster that will go away.
    server = MlflowServer(tmp_path_factory.mktemp("outage"), cluster.uri, workers=2, env={
        "HOKUSAI_BREAKER_RECOVERY_SECONDS": "2", "HOKUSAI_RETRY_AFTER_SECONDS": "1",
        "HOKUSAI_DB_TIMEOUT_SECONDS": "1", **FRESH_HEALTH}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key(server, cluster):
    return KeyStore(get_engine(cluster.uri)).create("outage", scopes="read,write,admin")[1]


def search(server, key):
    return requests.post(server.url + "/api/2.0/mlflow/experiments/search",
                         json={"max_results": 1}, headers={"X-API-Key": key}, timeout=30)


def breaker_refusal(response) -> bool:
    # MLflow's own 503 (its store failed) has no "detail"; the breaker's does.
    return response.status_code == 503 and "circuit breaker" in response.json().get("detail", "")


def test_database_outage_opens_the_breaker_and_recovers(server, cluster, key):
    assert search(server, key).status_code == 200
    assert requests.get(server.url + "/ready", timeout=30).status_code == 200

    cluster.stop()
    deadline = time.monotonic() + 30
    streak = 0
    while streak < 10:  # ten in a row: every worker's breaker is open
        assert time.monotonic() < deadline, "breaker never opened"
        response = search(server, key)
        assert response.status_code == 503  # never a misleading 401
        streak = streak + 1 if breaker_refusal(response) else 0

    # Open: answered with Retry-After. That it is answered before any key
    # lookup, without waiting on the database, is test_health_breaker.py's.
    for _ in range(5):
        response = search(server, key)
        if breaker_refusal(response):
            assert 1 <= int(response.headers["Retry-After"]) <= 2
    # Several times, so that both workers run their checks against the dead
    # database (a check that first built MLflow's registry store then hung in
    # MLflow's 100 s connect-retry loop, and readiness timed out after recovery).
    for _ in range(6):
        ready = requests.get(server.url + "/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert {c["name"] for c in ready.json()["checks"] if not c["passed"]} >= \
            {"database", "connectivity"}
    health = requests.get(server.url + "/health/mlflow", timeout=30)
    assert health.status_code == 503 and health.json()["connected"] is False
    assert requests.get(server.url + "/health", timeout=30).json()["status"] == "unhealthy"
    metrics = requests.get(server.url + "/metrics", timeout=30).text
    assert 'hokusai_circuit_breaker_transitions_total{from_state="closed",to_state="open"}' \
        in metrics
    assert requests.get(server.url + "/live", timeout=30).status_code == 200

    cluster.start()
    # Each worker's breaker recovers through its own half-open probes.
    deadline = time.monotonic() + 30
    streak = 0
    while streak < 10:
        assert time.monotonic() < deadline, "did not recover on its own"
        streak = streak + 1 if search(server, key).status_code == 200 else 0
        time.sleep(0.1)
    ready = requests.get(server.url + "/ready", timeout=30)
    assert ready.status_code == 200, ready.text


def test_mlflow_client_loses_nothing_across_a_short_outage(server, cluster, key, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key)
    client = MlflowClient(server.url)
    run = client.create_run(client.create_experiment(f"outage-{uuid.uuid4().hex[:6]}"))
    errors = []

    def log_metrics():
        try:
            for step in range(30):
                client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
                time.sleep(0.1)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=log_metrics)
    writer.start()
    time.sleep(0.8)
    cluster.stop()
    time.sleep(3)
    cluster.start()
    writer.join(timeout=240)
    assert not writer.is_alive() and errors == []
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted({m.step for m in history}) == list(range(30))


@pytest.fixture(scope="module")
def s3():
    s3 = S3Server().start()
    yield s3
    s3.stop()


def test_dead_artifact_store(tmp_path_factory, make_postgres_database, s3):
    server = MlflowServer(tmp_path_factory.mktemp("s3-outage"), make_postgres_database(),
                          workers=1, artifacts=f"s3://{s3.bucket}/mlflow",
                          env={**s3.client_env, "HOKUSAI_HEALTH_CHECK_TIMEOUT_SECONDS": "3",
                               **FRESH_HEALTH})
    server.start()
    try:
        assert requests.get(server.url + "/health/mlflow", timeout=30).json()["status"] == \
            "healthy"
        s3.stop()
        health = requests.get(server.url + "/health/mlflow", timeout=30)
        assert health.status_code == 503
        artifacts_check = health.json()["checks"]["artifacts_api"]
        assert artifacts_check["check_status"] in ("fail", "timeout")
        assert artifacts_check["status"] == {"fail": "unhealthy", "timeout": "timeout"}[
            artifacts_check["check_status"]]  # the API reference's words
        assert health.json()["checks"]["connectivity"]["check_status"] == "pass"
        assert health.json()["checks"]["connectivity"]["status"] == "healthy"
        ready = requests.get(server.url + "/ready", timeout=30).json()
        # Artifacts are not critical: still ready, but degraded.
        assert ready["ready"] is True and ready["degraded_mode"] is True
        assert requests.get(server.url + "/health", timeout=30).json()["status"] == "degraded"

        s3.start()
        assert requests.get(server.url + "/health/mlflow", timeout=30).status_code == 200
    finally:
        server.stop()
