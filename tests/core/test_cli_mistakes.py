"""A user's mistakes at the ``hokusai`` command: one line on stderr, a non-zero
exit, no traceback, in the command's own words."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mlflow_hokusai.client import HokusaiClient, HokusaiServerUnreachable
from tests.support.servers import BIN, free_port


def hokusai(*args, env=None):
    return subprocess.run([str(BIN / "hokusai"), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def assert_one_line_error(result, *needles, code=1):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unreachable_database():
    port = free_port()  # nothing listens there
    result = hokusai("keys", "list", "--database-uri", f"postgresql://postgres@127.0.0.1:{port}/x")
    assert_one_line_error(result, "Cannot use the database", str(port))


@pytest.mark.parametrize("uri, words", [
    ("sqlite:/x", "--database-uri: Could not parse"),
    ("postgresql+nosuchdriver://u@127.0.0.1/x", "--database-uri: Can't load plugin"),
])
def test_a_malformed_database_uri(uri, words):
    assert_one_line_error(hokusai("keys", "list", "--database-uri", uri), words)


@pytest.mark.parametrize("value, words", [
    ("ten", "Failed to convert 'ten' for MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"),
    ("-1", "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE must not be negative"),
])
def test_a_pool_size_that_is_no_size(value, words):
    env = {**os.environ, "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": value}
    result = hokusai("keys", "list", "--database-uri", "postgresql://postgres@127.0.0.1/postgres",
                     env=env)
    assert_one_line_error(result, words)


def test_sqlite_file_in_a_missing_directory(tmp_path):
    for command in (["keys", "create", "--name", "a"], ["keys", "list"], ["db", "upgrade"]):
        result = hokusai(*command, "--database-uri", f"sqlite:///{tmp_path}/nope/keys.db")
        assert_one_line_error(result, f"No directory {tmp_path}/nope", "--database-uri")


@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "revoke", "0123456789abcdef"],
                                     ["keys", "rotate", "0123456789abcdef"]])
def test_a_mistyped_sqlite_path_makes_no_database(tmp_path, command):
    result = hokusai(*command, "--database-uri", f"sqlite:///{tmp_path}/typo.db")
    assert_one_line_error(result, f"No SQLite database at {tmp_path}/typo.db")
    assert not (tmp_path / "typo.db").exists()


def test_gc_refuses_a_uri_that_is_not_a_hokusai_store(tmp_path):
    result = hokusai("artifacts", "gc", "--artifact-uri", f"file://{tmp_path}")
    assert_one_line_error(result, "--artifact-uri", "hokusai+file://", "not file:")


def test_gc_without_s3_credentials(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    result = hokusai("artifacts", "gc", "--artifact-uri", "hokusai+s3://bucket/prefix", env=env)
    assert_one_line_error(result, "No S3 credentials", "AWS_ACCESS_KEY_ID")


@pytest.mark.parametrize("flags, words", [
    (["--rate-limit", "5/fortnight"], "--rate-limit must be"),
    (["--expires-in", "-1"], "--expires-in (days) must be"),
    (["--scopes", "root"], "unknown scope"),
])
def test_errors_name_the_cli_flags(tmp_path, flags, words):
    result = hokusai("keys", "create", "--name", "a", *flags,
                     "--database-uri", f"sqlite:///{tmp_path}/keys.db")
    assert_one_line_error(result, words)
    assert "rate_limit" not in result.stderr and "expires_in_days" not in result.stderr


def _create(db, name):
    result = hokusai("keys", "create", "--name", name, "--json", "--database-uri", db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_revoke_and_rotate_take_the_prefix_keys_list_shows(tmp_path):
    db = f"sqlite:///{tmp_path}/keys.db"
    first, second = _create(db, "first"), _create(db, "second")
    assert first["prefix"] in hokusai("keys", "list", "--database-uri", db).stdout

    rotated = hokusai("keys", "rotate", first["prefix"], "--grace-period", "2",
                      "--database-uri", db)
    assert rotated.returncode == 0, rotated.stderr
    assert f"The old key {first['id']} ({first['prefix']}) keeps working until" in rotated.stdout
    assert "UTC, then expires" in rotated.stdout

    revoked = hokusai("keys", "revoke", second["prefix"], "--database-uri", db)
    assert revoked.returncode == 0 and second["id"] in revoked.stdout
    by_id_start = hokusai("keys", "rotate", first["id"][:6], "--database-uri", db)
    assert by_id_start.returncode != 0 and "already rotated" in by_id_start.stderr

    unknown = hokusai("keys", "revoke", "hk_live_zzzz", "--database-uri", db)
    assert_one_line_error(unknown, "API key not found: hk_live_zzzz")


def test_rotate_without_grace_says_the_old_key_stopped(tmp_path):
    db = f"sqlite:///{tmp_path}/keys.db"
    key = _create(db, "etl")
    rotated = hokusai("keys", "rotate", key["id"], "--database-uri", db)
    assert f"The old key {key['id']} ({key['prefix']}) is revoked" in rotated.stdout


def test_a_prefix_two_keys_share_is_refused(tmp_path):
    import sqlalchemy as sa

    from mlflow_hokusai import key_refs
    from mlflow_hokusai.db import migrate
    from mlflow_hokusai.db.engine import get_engine
    from mlflow_hokusai.db.schema import api_keys
    from mlflow_hokusai.errors import NotFound
    from mlflow_hokusai.plugins.auth.keystore import KeyStore

    engine = get_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate.upgrade(engine)
    store = KeyStore(engine)
    first, _ = store.create("a")
    store.create("b")
    with engine.begin() as conn:  # 4 of 62**4 characters alike: rare, not impossible
        conn.execute(sa.update(api_keys).values(prefix="hk_live_same"))
    with pytest.raises(NotFound, match="matches 2 keys"):
        key_refs.resolve(store, "hk_live_same")
    assert key_refs.resolve(store, first.id[:8]) == first.id


def test_permissions_against_a_server_that_is_down():
    result = hokusai("permissions", "list", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert_one_line_error(result, "Cannot reach the server", "Connection refused")


def test_client_fails_with_a_clear_error_when_the_server_is_down():
    client = HokusaiClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(HokusaiServerUnreachable, match="Cannot reach the server"):
        client.list_keys()


def test_client_create_key_takes_scopes_as_a_string(monkeypatch):
    sent = {}
    client = HokusaiClient("http://127.0.0.1:1")
    monkeypatch.setattr(client, "_request", lambda method, path, body: sent.update(body) or {})
    client.create_key("etl", scopes="read")
    assert sent["scopes"] == "read"
    client.create_key("etl", scopes=("read", "write"))
    assert sent["scopes"] == ["read", "write"]
