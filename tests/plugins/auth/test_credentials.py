"""Every accepted credential form, and every refusal, on both gates (ASGI and WSGI)."""

import base64
import concurrent.futures
import time
import uuid

import jwt
import pytest
import requests
from mlflow import MlflowClient

from mlflow_hokusai.plugins.auth import keys
from tests.support.jwt_keys import jwt_token

SEARCH = "/api/2.0/mlflow/experiments/search"
CREATE = "/api/2.0/mlflow/experiments/create"


def search(server, headers=None, params=None):
    return requests.post(server.url + SEARCH, json={"max_results": 1}, headers=headers or {},
                         params=params, timeout=30)


def assert_refused(response, detail="Invalid or expired API key"):
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["detail"] == detail
    assert body["error_code"] == "UNAUTHENTICATED" and body["message"] == detail
    # One scheme, and not Basic: a Basic challenge would make a browser prompt
    # and cache the key (people log in at /login).
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="hokusai"'


def basic(key, user="anyone"):
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


@pytest.mark.parametrize("form", ["bearer", "apikey", "x-api-key", "query", "basic"])
def test_each_key_form_is_accepted(each_server_kind, form):
    key = each_server_kind.create_key("read")
    headers, params = {}, None
    if form == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    elif form == "apikey":
        headers["Authorization"] = f"ApiKey {key}"
    elif form == "x-api-key":
        headers["X-API-Key"] = key
    elif form == "query":
        params = {"api_key": key}
    else:
        headers["Authorization"] = basic(key)
    response = search(each_server_kind, headers, params)
    assert response.status_code == 200, response.text
    assert "experiments" in response.json()


def test_mlflow_client_with_username_and_password(each_server_kind, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", each_server_kind.create_key("read"))
    assert MlflowClient(each_server_kind.url).search_experiments()


def test_authorization_header_wins_over_later_forms(each_server_kind):
    good = each_server_kind.create_key("read")
    response = search(each_server_kind, {"Authorization": f"Bearer {good}",
                                         "X-API-Key": "hk_live_garbage"})
    assert response.status_code == 200
    response = search(each_server_kind, {"Authorization": "Bearer hk_live_garbage",
                                         "X-API-Key": good})
    assert_refused(response)


@pytest.mark.parametrize("server_name,algorithm", [
    ("uvicorn_sqlite", "HS256"), ("uvicorn_sqlite", "RS256"),
    ("gunicorn_postgres", "HS256"), ("gunicorn_postgres", "ES256")])
def test_jwt_bearer_tokens(request, server_name, algorithm):
    server = request.getfixturevalue(server_name)
    good = {"Authorization": f"Bearer {jwt_token(algorithm)}"}
    assert search(server, good).status_code == 200
    created = requests.post(server.url + CREATE, json={"name": f"jwt-{uuid.uuid4().hex[:6]}"},
                            headers=good, timeout=30)
    assert created.status_code == 403 and created.json()["required_scope"] == "write"
    writer = {"Authorization": f"Bearer {jwt_token(algorithm, scope='read write')}"}
    assert requests.post(server.url + CREATE, json={"name": f"jwt-{uuid.uuid4().hex[:6]}"},
                         headers=writer, timeout=30).status_code == 200
    for bad in (jwt_token(algorithm, exp=int(time.time()) - 5),   # expired
                jwt_token(algorithm, aud="someone-else"),          # wrong audience
                jwt_token("HS256", sub="x").replace(".", ".x", 1),  # tampered
                jwt.encode({"sub": "x", "exp": int(time.time()) + 60, "aud": "hokusai-tests"},
                           "a-wrong-secret-of-the-recommended-length!", algorithm="HS256")):
        assert_refused(search(server, {"Authorization": f"Bearer {bad}"}))


def test_jwt_with_a_key_of_the_wrong_type_is_refused_not_an_error(uvicorn_sqlite):
    # The server holds an RSA public key; an ES256 token makes PyJWT raise
    # InvalidKeyError, which must still be a 401.
    assert_refused(search(uvicorn_sqlite, {"Authorization": f"Bearer {jwt_token('ES256')}"}))


def test_undecodable_basic_credentials_are_refused_not_an_error(each_server_kind):
    assert_refused(search(each_server_kind, {"Authorization": "Basic \xe9\xe9"}))


def test_missing_credentials(each_server_kind):
    assert_refused(search(each_server_kind), detail="API key required")


def _bad_checksum() -> str:
    key = keys.generate()
    # Only one final character completes a given key's checksum.
    return key[:-1] + ("0" if key[-1] != "0" else "1")


# Fixed ids: a generated key's value would differ between pytest-xdist's workers.
@pytest.mark.parametrize("value", ["hk_live_short", "not-a-key", "hk_prod_" + "a" * 36,
                                   _bad_checksum()],
                         ids=["short", "no-prefix", "wrong-prefix", "bad-checksum"])
def test_malformed_keys(each_server_kind, value):
    assert not keys.is_well_formed(value)
    assert_refused(search(each_server_kind, {"X-API-Key": value}))


def test_unknown_well_formed_key(each_server_kind):
    assert_refused(search(each_server_kind, {"X-API-Key": keys.generate()}))


def test_expired_key(each_server_kind):
    # When expiry takes effect (a cached key too) is test_auth_gate.py's, in
    # process with a clock moved by hand; here the refusal on both gates. A
    # lifetime that rounds to 0 ms: expired as it is created.
    key = each_server_kind.create_key("read", expires_in_days=1e-9)
    assert search(each_server_kind, {"X-API-Key": each_server_kind.create_key("read")}
                  ).status_code == 200
    assert_refused(search(each_server_kind, {"X-API-Key": key}))


def test_revocation_reaches_every_worker_within_a_second(each_server_kind):
    key = each_server_kind.create_key("read")
    headers = {"Authorization": f"Bearer {key}"}
    # Warm the key cache of every worker with concurrent requests.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert all(r.status_code == 200
                   for r in pool.map(lambda _: search(each_server_kind, headers), range(24)))
    key_id = each_server_kind.keystore.find_by_hash(keys.hash_key(key)).id
    admin = {"Authorization": f"Bearer {each_server_kind.admin_key}"}
    revoked = requests.delete(f"{each_server_kind.url}/api/keys/{key_id}", headers=admin,
                              timeout=30)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    time.sleep(1.0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: search(each_server_kind, headers), range(24)))
    assert [r.status_code for r in responses] == [401] * 24


def test_read_key_gets_403_naming_the_scope(each_server_kind):
    key = each_server_kind.create_key("read")
    response = requests.post(each_server_kind.url + CREATE, json={"name": "x"},
                             headers={"X-API-Key": key}, timeout=30)
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "'write'" in response.json()["detail"]
    keys_api = requests.get(each_server_kind.url + "/api/keys", headers={"X-API-Key": key},
                            timeout=30)
    assert keys_api.status_code == 403 and keys_api.json()["required_scope"] == "admin"


def test_a_request_records_the_keys_last_use(each_server_kind):
    # Written once per interval however often workers re-read the key:
    # test_auth_gate.py, in process with clocks moved by hand.
    key = each_server_kind.create_key("read")
    record = lambda: each_server_kind.keystore.find_by_hash(keys.hash_key(key))  # noqa: E731
    assert record().last_used_at is None
    assert search(each_server_kind, {"X-API-Key": key}).status_code == 200
    assert record().last_used_at is not None


def test_principal_reaches_mlflow_through_flask(each_server_kind):
    key = each_server_kind.keystore.create("queue-test", owner="carol", scopes="read,write")[1]
    headers = {"X-API-Key": key}
    experiment = requests.post(each_server_kind.url + CREATE,
                               json={"name": f"q-{uuid.uuid4().hex[:6]}"}, headers=headers,
                               timeout=30).json()["experiment_id"]
    response = requests.post(each_server_kind.url + "/api/3.0/mlflow/review-queues/create",
                             json={"experiment_id": experiment, "name": "triage",
                                   "queue_type": "CUSTOM"},
                             headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["review_queue"]["created_by"] == "carol"


def test_principal_reaches_fastapi_routes(uvicorn_sqlite):
    key = uvicorn_sqlite.keystore.create("mcp-test", owner="dave", scopes="read,write")[1]
    response = requests.post(uvicorn_sqlite.url + "/api/3.0/mlflow/mcp-servers",
                             json={"name": f"com.example/mcp-{uuid.uuid4().hex[:6]}"},
                             headers={"X-API-Key": key}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["created_by"] == "dave"


def test_keys_never_appear_in_server_logs(each_server_kind):
    key = each_server_kind.create_key("read")
    search(each_server_kind, {"X-API-Key": key})
    # The access log prints the query string: the key is taken out of it first.
    assert search(each_server_kind, params={"api_key": key, "x": "1"}).status_code == 200
    requests.get(each_server_kind.url + "/api/keys", headers={"X-API-Key": key}, timeout=30)
    log = each_server_kind.server.log_path.read_text(errors="replace")
    assert key not in log and each_server_kind.admin_key not in log
