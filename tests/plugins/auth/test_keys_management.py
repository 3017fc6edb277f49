"""Key management: the REST API, the Python client entry point and the CLI."""

import concurrent.futures
import dataclasses
import json
import time

import mlflow.server
import pytest
import requests
from click.testing import CliRunner

from mlflow_hokusai.cli import main
from mlflow_hokusai.client import HokusaiClient, HokusaiClientError


def admin_headers(server):
    return {"Authorization": f"Bearer {server.admin_key}"}


def status(server, key):
    return requests.post(server.url + "/api/2.0/mlflow/experiments/search", json={"max_results": 1},
                         headers={"X-API-Key": key}, timeout=30).status_code


def test_rest_create_list_revoke(each_server_kind):
    url = each_server_kind.url + "/api/keys"
    created = requests.post(url, json={"name": "ci", "scopes": ["read"], "tier": "free",
                                       "expires_in_days": 30}, headers=admin_headers(
                                           each_server_kind), timeout=30)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("hk_live_") and body["prefix"] == body["key"][:12]
    assert body["scopes"] == ["read"] and body["tier"] == "free" and body["expires_at"]
    assert status(each_server_kind, body["key"]) == 200

    listed = requests.get(url, headers=admin_headers(each_server_kind), timeout=30).json()["keys"]
    mine = [k for k in listed if k["id"] == body["id"]]
    assert len(mine) == 1 and "key" not in mine[0] and "key_hash" not in mine[0]
    assert body["key"] not in json.dumps(listed)

    revoked = requests.delete(f"{url}/{body['id']}", headers=admin_headers(each_server_kind),
                              timeout=30)
    assert revoked.json()["revoked"] is True
    time.sleep(1.0)
    assert status(each_server_kind, body["key"]) == 401


@pytest.mark.parametrize("payload,message", [
    ({}, "Missing required field(s): name"),
    ({"name": ""}, "name must be"),
    ({"name": "x", "scopes": ["root"]}, "unknown scope"),
    ({"name": "x", "scopes": []}, "at least one scope"),
    ({"name": "x", "tier": "gold"}, "tier must be one of"),
    ({"name": "x", "expires_in_days": -1}, "expires_in_days must be"),
    ({"name": "x", "expires_in_days": "soon"}, "expires_in_days must be"),
    ({"name": "x", "colour": "blue"}, "Unknown field(s): colour"),
    ({"name": "x", "rate_limit": "lots"}, "rate_limit must be"),
    ([1, 2], "must be a JSON object"),
])
def test_rest_create_validation(uvicorn_sqlite, payload, message):
    before = len(uvicorn_sqlite.keystore.list())
    response = requests.post(uvicorn_sqlite.url + "/api/keys", json=payload,
                             headers=admin_headers(uvicorn_sqlite), timeout=30)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert len(uvicorn_sqlite.keystore.list()) == before  # nothing half-written


def test_rest_invalid_json_and_unknown_ids(gunicorn_postgres):
    headers = {**admin_headers(gunicorn_postgres), "Content-Type": "application/json"}
    bad = requests.post(gunicorn_postgres.url + "/api/keys", data="{nope", headers=headers,
                        timeout=30)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["detail"]
    missing = requests.delete(gunicorn_postgres.url + "/api/keys/doesnotexist",
                              headers=headers, timeout=30)
    assert missing.status_code == 404 and missing.json()["error_code"] == \
        "RESOURCE_DOES_NOT_EXIST"


def test_bad_inputs_on_postgres_are_4xx_not_errors(gunicorn_postgres):
    headers = admin_headers(gunicorn_postgres)
    url = gunicorn_postgres.url + "/api/keys"
    nul = requests.post(url, json={"name": "a\x00b"}, headers=headers, timeout=30)
    # Refused by the check of every JSON body's text, before the name's own.
    assert nul.status_code == 400 and "must not contain NUL" in nul.json()["detail"]
    deep = requests.post(url, data="[" * 100000 + "]" * 100000, headers={
        **headers, "Content-Type": "application/json"}, timeout=30)
    assert deep.status_code == 400
    # A NUL in any URL is refused before a route sees it (the pipeline's check).
    for answer in (requests.delete(url + "/%00", headers=headers, timeout=30),
                   requests.post(url + "/abc%00/rotate", json={}, headers=headers, timeout=30)):
        assert answer.status_code == 400 and "NUL" in answer.json()["detail"]


def test_a_key_is_rotated_once_even_when_rotations_race(each_server_kind):
    key = each_server_kind.create_key("read")
    key_id = [k for k in each_server_kind.keystore.list() if key.startswith(k.prefix)][-1].id
    url = f"{each_server_kind.url}/api/keys/{key_id}/rotate"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: requests.post(
            url, json={"grace_period_hours": 1}, headers=admin_headers(each_server_kind),
            timeout=30).status_code, range(4)))
    assert codes == [201, 409, 409, 409]
    successors = [k for k in each_server_kind.keystore.list() if k.rotated_from == key_id]
    assert len(successors) == 1
    assert each_server_kind.keystore.get(key_id).rotated_to == successors[0].id


def test_rotation_with_grace_period(each_server_kind):
    old_key = each_server_kind.create_key("read")
    old_id = [k for k in each_server_kind.keystore.list() if old_key.startswith(k.prefix)][-1].id
    rotated = requests.post(f"{each_server_kind.url}/api/keys/{old_id}/rotate",
                            json={"grace_period_hours": 1},
                            headers=admin_headers(each_server_kind), timeout=30)
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["rotated_from"] == old_id and new["scopes"] == ["read"]
    assert status(each_server_kind, new["key"]) == 200
    assert status(each_server_kind, old_key) == 200  # still inside the grace period
    old = each_server_kind.keystore.get(old_id)
    assert old.expires_at is not None and old.expires_at <= time.time() * 1000 + 3_600_500

    immediate = requests.post(f"{each_server_kind.url}/api/keys/{new['id']}/rotate", json={},
                              headers=admin_headers(each_server_kind), timeout=30).json()
    time.sleep(1.0)
    assert status(each_server_kind, new["key"]) == 401
    assert status(each_server_kind, immediate["key"]) == 200


def test_app_client_entry_point(uvicorn_sqlite, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", uvicorn_sqlite.admin_key)
    client = mlflow.server.get_app_client("hokusai", uvicorn_sqlite.url)
    assert isinstance(client, HokusaiClient)
    created = client.create_key("from-client", scopes=["read"])
    assert any(k["id"] == created["id"] for k in client.list_keys())
    rotated = client.rotate_key(created["id"], grace_period_hours=0)
    assert rotated["rotated_from"] == created["id"]
    assert client.revoke_key(rotated["id"])["state"] == "revoked"
    with pytest.raises(HokusaiClientError) as error:
        client.create_key("", scopes=["read"])
    assert error.value.status == 400 and "name" in error.value.detail

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", uvicorn_sqlite.create_key("read,write"))
    with pytest.raises(HokusaiClientError) as error:
        client.list_keys()
    assert error.value.status == 403


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def hokusai(*args, database_uri):
    """The ``hokusai`` command run in this process: these tests are about what the
    commands do, not the executable (a process each cost 2-3 s of imports; the
    installed script and its exit codes: test_cli_mistakes.py)."""
    result = CliRunner().invoke(main, [*args, "--database-uri", database_uri])
    return Ran(result.exit_code, result.stdout, result.stderr)


def test_cli_lifecycle(tmp_path):
    db = f"sqlite:///{tmp_path}/cli.db"
    created = hokusai("keys", "create", "--name", "etl", "--scopes", "read,write",
                      "--tier", "free", "--rate-limit", "50/minute", "--expires-in", "7", "--json",
                      database_uri=db)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["key"].startswith("hk_live_") and body["tier"] == "free"
    assert body["rate_limit"] == "50/minute"

    listed = hokusai("keys", "list", "--json", database_uri=db)
    assert [k["id"] for k in json.loads(listed.stdout)] == [body["id"]]
    assert body["key"] not in listed.stdout
    table = hokusai("keys", "list", database_uri=db).stdout
    assert body["id"] in table and body["prefix"] in table and body["key"] not in table

    rotated = hokusai("keys", "rotate", body["id"], "--grace-period", "2", "--json",
                      database_uri=db)
    assert json.loads(rotated.stdout)["rotated_from"] == body["id"]
    revoked = hokusai("keys", "revoke", body["id"], database_uri=db)
    assert revoked.returncode == 0 and body["key"] not in revoked.stdout

    human = hokusai("keys", "create", "--name", "human", database_uri=db)
    assert "not shown again" in human.stdout and "hk_live_" in human.stdout

    bad = hokusai("keys", "create", "--name", "x", "--scopes", "root", database_uri=db)
    assert bad.returncode != 0 and "unknown scope" in bad.stderr
    gone = hokusai("keys", "revoke", "nope", database_uri=db)
    assert gone.returncode != 0 and "not found" in gone.stderr

    assert "already at" in hokusai("db", "upgrade", database_uri=db).stdout


def test_cli_bootstrap_creates_one_admin_key(tmp_path):
    db = f"sqlite:///{tmp_path}/boot.db"
    first = hokusai("keys", "bootstrap", "--json", database_uri=db)
    assert json.loads(first.stdout)["scopes"] == ["read", "write", "admin"]
    second = hokusai("keys", "bootstrap", "--json", database_uri=db)
    assert second.returncode == 0 and second.stdout == ""
