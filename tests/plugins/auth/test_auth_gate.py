"""The gate in process, on a SQLite key store, with clocks the test moves by
hand: a key's expiry is seen even while a worker caches the key, and its
``last_used_at`` is written once per interval, not per re-read."""

import time

import pytest

from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.errors import AuthenticationFailed
from mlflow_hokusai.plugins.auth import keys
from mlflow_hokusai.plugins.auth.credentials import Credential
from mlflow_hokusai.plugins.auth.gate import Gate
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from mlflow_hokusai.settings import Settings
from tests.support.clock import FakeClock

TTL = 0.9  # HOKUSAI_KEY_CACHE_TTL_SECONDS's default, as the servers of the e2e tests run


@pytest.fixture
def keystore(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    migrate.upgrade(engine)
    return KeyStore(engine)


def _worker(keystore, wall: FakeClock, cache: FakeClock) -> Gate:
    settings = Settings.from_env({"HOKUSAI_KEY_CACHE_TTL_SECONDS": str(TTL)})
    return Gate(settings, keystore, clock=wall, monotonic=cache)


def _use(gate: Gate, key: str):
    return gate.authenticate(Credential("key", key), allow_io=True)


def test_a_cached_key_is_refused_from_the_millisecond_it_expires(keystore):
    record, key = keystore.create("short", scopes="read", expires_in_days=2 / 86400)
    assert record.expires_at is not None
    wall, cache = FakeClock(time.time()), FakeClock()
    gate = _worker(keystore, wall, cache)
    assert _use(gate, key).key_id == record.id  # now cached
    wall.now = (record.expires_at - 0.5) / 1000  # its last millisecond
    assert _use(gate, key).key_id == record.id
    wall.now = (record.expires_at + 0.5) / 1000
    cache.now += TTL / 2  # still within the cache's bound: the cached record decides
    with pytest.raises(AuthenticationFailed) as refused:
        _use(gate, key)
    assert refused.value.reason == "expired"
    cache.now += TTL  # read again from the store: expired there too
    with pytest.raises(AuthenticationFailed) as refused:
        _use(gate, key)
    assert refused.value.reason == "expired"


def test_last_used_is_written_once_per_interval_not_per_re_read(keystore):
    record, key = keystore.create("busy", scopes="read")
    last_used = lambda: keystore.find_by_hash(keys.hash_key(key)).last_used_at  # noqa: E731
    assert last_used() is None
    wall, cache = FakeClock(time.time()), FakeClock()
    workers = [_worker(keystore, wall, cache), _worker(keystore, wall, cache)]
    _use(workers[0], key)
    first = last_used()
    assert first == int(wall.now * 1000)
    for _ in range(3):
        cache.now += TTL + 0.1  # past the cache's bound: each worker reads the key again
        wall.now += 1
        for worker in workers:
            assert _use(worker, key).key_id == record.id
    assert last_used() == first
    wall.now += 60  # HOKUSAI_LAST_USED_INTERVAL_SECONDS's default has passed
    cache.now += TTL + 0.1
    _use(workers[1], key)
    assert last_used() == int(wall.now * 1000) > first
