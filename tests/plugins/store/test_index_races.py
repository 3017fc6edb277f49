"""Races on the registry index on PostgreSQL (SQLite lets one writer in at a
time): one transaction releases a model's token (its version 1 drops the tag,
or is deleted) while another gives the same token to version 2 or a new version
3. Whichever commits first, the token stays bound while a version holds it, no
other model can take it, and a rebuild of the index agrees.

Each race is played out deterministically on two real connections: one
transaction is held open at the point of conflict while the other runs in a
thread; the test waits until that thread either finished or waits on a lock
(as PostgreSQL reports it), then commits the first.
"""

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.exceptions import MlflowException

from mlflow_hokusai.plugins.store.registry import registry_store_class
from tests.support.index_helpers import rebuilt_answers, service_answers

TOKEN = "hokusai_token_id"
ROUNDS = 3  # each order of each pair of writers, a few times


@pytest.fixture(scope="module")
def store(make_postgres_database):
    store = registry_store_class()(make_postgres_database())
    yield store
    store.engine.dispose()


def _waiting_on_a_lock(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar()


def _race(store, held: str, params: dict, other) -> list:
    """Run ``held`` (SQL) in a transaction left open, then ``other`` in a thread;
    commit once ``other`` is done or blocked. Returns ``other``'s errors."""
    errors = []

    def run_other():
        try:
            other()
        except Exception as error:  # noqa: BLE001 (reported to the test)
            errors.append(error)

    with store.engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(sa.text(held), params)
        thread = threading.Thread(target=run_other)
        thread.start()
        deadline = time.monotonic() + 60
        while thread.is_alive() and not _waiting_on_a_lock(store.engine):
            assert time.monotonic() < deadline, "the second writer neither ran nor waited"
            thread.join(0.02)
        transaction.commit()
    thread.join(60)
    assert not thread.is_alive()
    return errors


DROP_TAG = ("DELETE FROM model_version_tags WHERE name = :name AND version = 1 "
            f"AND key = '{TOKEN}'")
DELETE_VERSION = ("UPDATE model_versions SET current_stage = 'Deleted_Internal' "
                  "WHERE name = :name AND version = 1")
SET_TAG_ON_2 = (f"INSERT INTO model_version_tags (name, version, key, value) "
                f"VALUES (:name, 2, '{TOKEN}', :token)")


def _model(store, token):
    name = f"race-{uuid.uuid4().hex[:8]}"
    store.create_registered_model(name)
    store.create_model_version(name, "mlflow-artifacts:/m", tags=[
        ModelVersionTag(TOKEN, token), ModelVersionTag("benchmark_value", "1")])
    store.create_model_version(name, "mlflow-artifacts:/m")
    return name


def _check(store, name, token):
    other = f"thief-{uuid.uuid4().hex[:8]}"
    store.create_registered_model(other)
    store.create_model_version(other, "mlflow-artifacts:/o")
    with pytest.raises(MlflowException, match="already bound to registered model") as refused:
        store.set_model_version_tag(other, "1", ModelVersionTag(TOKEN, token))
    assert refused.value.error_code == "RESOURCE_ALREADY_EXISTS"
    names, tokens = [name, other], [token]
    with store.ManagedSessionMaker() as session:
        live = service_answers(session, names, tokens, [])
    assert live[("token", token)]["model_name"] == name
    assert live == rebuilt_answers(store.engine, names, tokens, [])


RELEASES = {"drop_tag": DROP_TAG, "delete_version": DELETE_VERSION}
HOLDS = {
    "set_tag_on_2": lambda store, name, token: store.set_model_version_tag(
        name, "2", ModelVersionTag(TOKEN, token)),
    "create_3": lambda store, name, token: store.create_model_version(
        name, "mlflow-artifacts:/m", tags=[ModelVersionTag(TOKEN, token)]),
}


@pytest.mark.parametrize("hold", HOLDS)
@pytest.mark.parametrize("release", RELEASES)
def test_a_release_held_open_does_not_drop_a_token_set_meanwhile(store, release, hold):
    for _ in range(ROUNDS):
        token = f"tok-{uuid.uuid4().hex[:8]}"
        name = _model(store, token)
        errors = _race(store, RELEASES[release], {"name": name},
                       lambda name=name, token=token: HOLDS[hold](store, name, token))
        assert errors == []
        _check(store, name, token)


RELEASED_BY_STORE = {
    "drop_tag": lambda store, name: store.delete_model_version_tag(name, "1", TOKEN),
    "delete_version": lambda store, name: store.delete_model_version(name, "1"),
}


@pytest.mark.parametrize("release", RELEASED_BY_STORE)
def test_a_token_set_held_open_is_not_released_meanwhile(store, release):
    for _ in range(ROUNDS):
        token = f"tok-{uuid.uuid4().hex[:8]}"
        name = _model(store, token)
        errors = _race(store, SET_TAG_ON_2, {"name": name, "token": token},
                       lambda name=name: RELEASED_BY_STORE[release](store, name))
        assert errors == []
        _check(store, name, token)


def test_many_concurrent_rounds_through_the_store(store):
    """The reported case as it happened: both calls at once, over and over."""
    for _ in range(10):
        token = f"tok-{uuid.uuid4().hex[:8]}"
        name = _model(store, token)
        barrier = threading.Barrier(2)
        errors = []

        def call(action, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                action()
            except Exception as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=call, args=(action,)) for action in (
            lambda name=name: store.delete_model_version_tag(name, "1", TOKEN),
            lambda name=name, token=token: store.set_model_version_tag(
                name, "2", ModelVersionTag(TOKEN, token)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        _check(store, name, token)
