"""When the key store is unreachable the answer is 503 with Retry-After (never a
misleading 401), and service resumes by itself when the database returns."""

import time

import pytest
import requests

from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests.support.servers import MlflowServer


@pytest.fixture(scope="module")
def keystore_cluster(throwaway_postgres):
    return throwaway_postgres


@pytest.fixture(scope="module")
def outage_server(tmp_path_factory, keystore_cluster):
    workdir = tmp_path_factory.mktemp("outage")
    server = MlflowServer(workdir, f"sqlite:///{workdir}/mlflow.db", workers=1,
                          # Serving off: this is about the key store. (Serving's supervisor
                          # polls this database every second; its failures once held the
                          # breaker open past the 20 s below: test_breaker_errors.py.)
                          env={"HOKUSAI_DATABASE_URI": keystore_cluster.uri,
                               "HOKUSAI_DB_TIMEOUT_SECONDS": "1",
                               "HOKUSAI_SERVING_ENABLED": "false"}).start()
    yield server
    server.stop()


def search(server, key):
    return requests.post(server.url + "/api/2.0/mlflow/experiments/search",
                         json={"max_results": 1}, headers={"X-API-Key": key}, timeout=30)


def test_keystore_outage_gives_503_then_recovers(outage_server, keystore_cluster):
    store = KeyStore(get_engine(keystore_cluster.uri))
    cached, uncached = store.create("a")[1], store.create("b")[1]
    assert search(outage_server, cached).status_code == 200
    get_engine(keystore_cluster.uri).dispose()

    keystore_cluster.stop()
    started = time.monotonic()
    refused = search(outage_server, uncached)
    assert time.monotonic() - started < 5
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "API key" not in refused.json()["detail"]  # not dressed up as a bad key
    time.sleep(1.0)  # past the cache TTL: the cached key is re-checked too
    assert search(outage_server, cached).status_code == 503
    # Public probes do not depend on the key store.
    assert requests.get(outage_server.url + "/version", timeout=10).status_code == 200

    keystore_cluster.start()
    deadline = time.monotonic() + 20
    while search(outage_server, uncached).status_code != 200:
        assert time.monotonic() < deadline, "did not recover"
        time.sleep(0.5)
    assert search(outage_server, cached).status_code == 200
