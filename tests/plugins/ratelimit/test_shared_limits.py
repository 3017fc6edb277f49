"""Limits without Redis hold across the workers of one server (the default
storage is a file shared by them); the failed-credential lockout stops guessing
but serves valid credentials; public routes have a per-address limit; gunicorn's
access log never shows a query-string key."""

import concurrent.futures
import uuid

import pytest
import requests

from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests.support.metrics import delta, scrape
from tests.support.servers import MlflowServer

SEARCH = "/api/2.0/mlflow/experiments/search"


@pytest.fixture(scope="module")
def gunicorn_default(tmp_path_factory):
    """Gunicorn, two workers, no rate-limit storage configured (the default), an
    access log; 127.0.0.1 is a trusted proxy, so tests pick client addresses."""
    workdir = tmp_path_factory.mktemp("shared-limits")
    database = f"sqlite:///{workdir}/mlflow.db"
    server = MlflowServer(workdir, database, server="gunicorn", workers=2,
                          gunicorn_opts="--timeout 120 --access-logfile -", env={
        "HOKUSAI_TRUSTED_PROXIES": "127.0.0.1", "HOKUSAI_AUTH_FAILURE_LIMIT": "3/minute",
        "HOKUSAI_AUTH_LOCKOUT_SECONDS": "120", "HOKUSAI_PUBLIC_RATE_LIMIT": "5/minute"}).start()
    yield server, KeyStore(get_engine(database))
    server.stop()


def search(url, key, address=None, **params):
    headers = {"X-API-Key": key} if key else {}
    if address:
        headers["X-Forwarded-For"] = address
    return requests.get(url + SEARCH, params={"max_results": 1, **params}, headers=headers,
                        timeout=30)


def test_limit_is_exact_across_the_workers_of_one_server(gunicorn_default, uvicorn_sqlite):
    """N + k concurrent requests against a limit of N: exactly k refused, under
    gunicorn and uvicorn with two workers each and no Redis."""
    server, store = gunicorn_default
    for url, key in ((server.url, store.create("exact", rate_limit="10/minute")[1]),
                     (uvicorn_sqlite.url, uvicorn_sqlite.create_key(rate_limit="10/minute"))):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(lambda _, url=url, key=key: search(url, key).status_code,
                                     range(16)))
        assert codes == [200] * 10 + [429] * 6, url


def test_lockout_stops_guessing_not_valid_keys(gunicorn_default):
    server, store = gunicorn_default
    attacker, elsewhere = "203.0.113.50", "198.51.100.50"
    known = store.create("known")[1]
    assert search(server.url, known, elsewhere).status_code == 200  # verified once
    wrong = lambda: "hk_live_" + uuid.uuid4().hex[:30] + "AAAAAA"  # noqa: E731
    assert [search(server.url, wrong(), attacker).status_code for _ in range(4)] == \
        [401, 401, 401, 429]
    scraper = {"X-Forwarded-For": "192.0.2.200"}  # the public limit is per address
    before = scrape(server, scraper)
    # Counted across both workers: every further guess is refused, unlooked-up.
    guesses = [search(server.url, "hk_live_" + "z" * 36, attacker) for _ in range(10)]
    assert {r.status_code for r in guesses} == {429}
    assert "failed authentication" in guesses[0].json()["detail"]
    after = scrape(server, scraper)
    assert delta(before, after, "hokusai_key_cache_lookups_total", result="miss") == 0
    # A valid key from the locked-out address is served, by either worker.
    assert {search(server.url, known, attacker).status_code for _ in range(6)} == {200}
    assert search(server.url, known, elsewhere).status_code == 200


def test_public_routes_are_limited_per_address(gunicorn_default):
    server, store = gunicorn_default
    address = "192.0.2.77"
    codes = [requests.get(server.url + "/health", headers={"X-Forwarded-For": address},
                          timeout=30).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = requests.get(server.url + "/version", headers={"X-Forwarded-For": address},
                           timeout=30)
    assert refused.status_code == 429 and refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert requests.get(server.url + "/health", headers={"X-Forwarded-For": "192.0.2.78"},
                        timeout=30).status_code == 200
    # Authenticated routes from the same address are not affected.
    assert search(server.url, store.create("public")[1], address).status_code == 200


def test_gunicorn_access_log_never_shows_a_query_key(gunicorn_default):
    server, store = gunicorn_default
    key = store.create("logged")[1]
    marker = uuid.uuid4().hex
    assert search(server.url, None, api_key=key, marker=marker).status_code == 200
    assert requests.get(f"{server.url}{SEARCH}?api%5Fkey={key}&max_results=1",
                        timeout=30).status_code == 200
    log = server.log_path.read_text()
    assert f"marker={marker}" in log  # the access log is on and shows the query
    assert key not in log and key[:20] not in log
