"""Rate limits per key, tier and route: exact across workers and servers with
Redis, headers that say where a client stands, a lockout for wrong
credentials, and both behaviours when Redis is down."""

import concurrent.futures
import time
import uuid

import pytest
import requests
from mlflow import MlflowClient

from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests.support.redisserver import RedisServer
from tests.support.servers import MlflowServer

LIMITS = {
    "HOKUSAI_TIER_LIMITS": "free=5/4 seconds,standard=1000/minute,enterprise=10000/minute",
    "HOKUSAI_ROUTE_LIMITS": "registration=3/4 seconds,lineage=100/minute,"
                            "contributor_impact=100/minute",
    "HOKUSAI_AUTH_FAILURE_LIMIT": "5/minute", "HOKUSAI_AUTH_LOCKOUT_SECONDS": "3",
}
SEARCH = "/api/2.0/mlflow/experiments/search"


@pytest.fixture(scope="module")
def pair(tmp_path_factory, make_postgres_database, redis_prefix):
    """Two servers (uvicorn and gunicorn, two workers each) sharing one database
    and one Redis; 127.0.0.1 is a trusted proxy, so tests pick client addresses."""
    database = make_postgres_database()
    env = {**LIMITS, "HOKUSAI_RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
           "HOKUSAI_RATE_LIMIT_KEY_PREFIX": redis_prefix, "HOKUSAI_TRUSTED_PROXIES": "127.0.0.1"}
    servers = []
    try:
        for kind in ("uvicorn", "gunicorn"):
            servers.append(MlflowServer(tmp_path_factory.mktemp(f"limits-{kind}"), database,
                                        server=kind, workers=2, env=env).start())
        yield servers, KeyStore(get_engine(database))
    finally:
        for server in servers:
            server.stop()


def search(server, key, address=None):
    headers = {"X-API-Key": key}
    if address:
        headers["X-Forwarded-For"] = address
    return requests.get(server.url + SEARCH, params={"max_results": 1}, headers=headers,
                        timeout=30)


def wait_for_reset(responses):
    reset = max(int(r.headers["X-RateLimit-Reset"]) for r in responses)
    time.sleep(max(0.0, reset - time.time()) + 0.2)


def test_exact_limit_across_two_servers_and_four_workers(pair):
    servers, store = pair
    key = store.create("exact", rate_limit="10/6 seconds")[1]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda i: search(servers[i % 2], key), range(15)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [429] * 5
    now = time.time()
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == "10"
        assert 0 <= int(response.headers["X-RateLimit-Remaining"]) <= 9
        assert now - 1 <= int(response.headers["X-RateLimit-Reset"]) <= now + 7
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(refused.headers["Retry-After"]) <= 6
        body = refused.json()
        assert body["detail"] == "Rate limit exceeded" and body["retry_after"] >= 1
        assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"

    # The window moves: at X-RateLimit-Reset the oldest request leaves it and
    # one slot frees up; after a whole window, all ten have.
    wait_for_reset(responses)
    assert search(servers[0], key).status_code == 200
    time.sleep(6.2)
    # One count shared by both servers: alternating between them counts down by one.
    again = [search(servers[i % 2], key) for i in range(4)]
    assert [r.status_code for r in again] == [200] * 4
    assert [r.headers["X-RateLimit-Remaining"] for r in again] == ["9", "8", "7", "6"]


def test_tiers(pair):
    servers, store = pair
    free = store.create("free", tier="free")[1]
    standard = store.create("standard", tier="standard")[1]
    responses = [search(servers[0], free) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert responses[0].headers["X-RateLimit-Limit"] == "5"
    standard_response = search(servers[1], standard)
    assert standard_response.status_code == 200
    assert standard_response.headers["X-RateLimit-Limit"] == "1000"
    enterprise = store.create("ent", tier="enterprise", rate_limit="7/minute")[1]
    assert search(servers[0], enterprise).headers["X-RateLimit-Limit"] == "7"


def test_route_limits_on_top_of_the_key_limit(pair):
    servers, store = pair
    key = store.create("registrar")[1]  # standard tier: 1000/minute for the key
    url = servers[0].url + "/api/2.0/mlflow/registered-models/create"
    responses = [requests.post(url, json={"name": f"m-{uuid.uuid4().hex[:8]}"},
                               headers={"X-API-Key": key}, timeout=30) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"  # the tighter limit is shown
    assert responses[3].headers["X-RateLimit-Limit"] == "3"
    other = search(servers[1], key)  # the rest of the API is not affected
    assert other.status_code == 200 and other.headers["X-RateLimit-Limit"] == "1000"


def test_health_has_no_key_limit(pair):
    # Public routes are limited per address instead (test_shared_limits.py).
    servers, store = pair
    for _ in range(12):
        response = requests.get(servers[0].url + "/health", timeout=30)
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers
    assert response.json()["services"]["redis"] == "healthy"


def test_failed_authentication_locks_the_address_out(pair):
    servers, store = pair
    good = store.create("victim")[1]
    attacker, bystander = "203.0.113.7", "198.51.100.9"
    for _ in range(10):  # no credentials at all is not a guess
        assert requests.get(servers[0].url + SEARCH, headers={"X-Forwarded-For": attacker},
                            timeout=30).status_code == 401
    codes = [search(servers[i % 2], "hk_live_" + "x" * 36, attacker).status_code
             for i in range(6)]
    assert codes == [401] * 5 + [429]
    # The lockout stops guessing: a key no worker has verified is not looked up...
    unknown = store.create("new")[1]
    locked = search(servers[1], unknown, attacker)
    assert locked.status_code == 429 and "failed authentication" in locked.json()["detail"]
    assert 1 <= int(locked.headers["Retry-After"]) <= 3
    # ...but a valid key verified before, by any worker of either server, is served.
    assert search(servers[0], good, bystander).status_code == 200
    assert [search(servers[i % 2], good, attacker).status_code for i in range(4)] == [200] * 4
    time.sleep(3.2)
    assert search(servers[0], unknown, attacker).status_code == 200


def test_mlflow_client_retries_429_and_loses_nothing(pair, monkeypatch):
    servers, store = pair
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", store.create("slow", rate_limit="4/2 seconds")[1])
    client = MlflowClient(servers[0].url)
    run = client.create_run(client.create_experiment(f"limited-{uuid.uuid4().hex[:6]}"))
    for step in range(12):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(12))


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory):
    # gunicorn: uvicorn would itself replace the peer address with X-Forwarded-For
    # from 127.0.0.1 (its --forwarded-allow-ips default), before Hokusai sees it.
    workdir = tmp_path_factory.mktemp("limits-memory")
    server = MlflowServer(workdir, f"sqlite:///{workdir}/mlflow.db", server="gunicorn",
                          workers=1, env={
        **LIMITS, "HOKUSAI_AUTH_FAILURE_LIMIT": "3/minute",
        "HOKUSAI_METRICS_REQUIRE_AUTH": "true"}).start()
    yield server, KeyStore(get_engine(f"sqlite:///{workdir}/mlflow.db"))
    server.stop()


def test_metrics_behind_the_read_scope_when_configured(memory_server):
    server, store = memory_server
    assert requests.get(server.url + "/metrics", timeout=30).status_code == 401
    response = requests.get(server.url + "/metrics", headers={"X-API-Key": store.create("m")[1]},
                            timeout=30)
    assert response.status_code == 200 and "hokusai_http_requests_total" in response.text


def test_in_memory_limits_and_untrusted_forwarded_for(memory_server):
    server, store = memory_server
    key = store.create("mem", rate_limit="3/minute")[1]
    assert [search(server, key).status_code for _ in range(4)] == [200, 200, 200, 429]
    # Without a trusted proxy, X-Forwarded-For is the client's word: ignored.
    codes = [search(server, "hk_live_" + "y" * 36, f"192.0.2.{i}").status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert search(server, store.create("other")[1], "192.0.2.99").status_code == 429


@pytest.fixture(scope="module")
def own_redis():
    server = RedisServer().start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def redis_down_servers(tmp_path_factory, own_redis):
    workdir = tmp_path_factory.mktemp("limits-redis-down")
    database = f"sqlite:///{workdir}/mlflow.db"
    servers = {}
    try:
        for mode in ("open", "closed"):
            servers[mode] = MlflowServer(workdir / mode, database, workers=1, env={
                "HOKUSAI_RATE_LIMIT_STORAGE_URI": own_redis.uri,
                "HOKUSAI_RATE_LIMIT_FAIL_MODE": mode, "HOKUSAI_RETRY_AFTER_SECONDS": "2",
            }).start()
        yield servers, KeyStore(get_engine(database))
    finally:
        for server in servers.values():
            server.stop()


def test_redis_down_fail_open_and_fail_closed(redis_down_servers, own_redis):
    servers, store = redis_down_servers
    key = store.create("rd", rate_limit="100/minute")[1]
    for server in servers.values():
        assert search(server, key).headers["X-RateLimit-Limit"] == "100"

    own_redis.stop()
    passed = search(servers["open"], key)
    assert passed.status_code == 200 and "X-RateLimit-Limit" not in passed.headers
    health = requests.get(servers["open"].url + "/health", timeout=30).json()
    assert health["status"] == "degraded" and health["services"]["redis"] == "unhealthy"
    ready = requests.get(servers["open"].url + "/ready", timeout=30).json()
    assert ready["ready"] is True and ready["degraded_mode"] is True
    metrics = requests.get(servers["open"].url + "/metrics", timeout=30).text
    errors = [line for line in metrics.splitlines()
              if line.startswith("hokusai_rate_limit_storage_errors_total ")]
    assert errors and float(errors[0].split()[1]) >= 1

    refused = search(servers["closed"], key)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
    assert requests.get(servers["closed"].url + "/ready", timeout=30).status_code == 503

    own_redis.start()
    time.sleep(1.2)  # past the storage back-off
    for server in servers.values():
        response = search(server, key)
        assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == "100"
