"""One definition of the registry index: whatever sequence of registry writes
made it, what the token, lineage and contributor routes answer from the index
the triggers keep equals what they answer after a full rebuild from MLflow's
tables (``hokusai db reindex``), on SQLite and PostgreSQL.

Hypothesis draws sequences of writes through Hokusai's registry store in this
process (refused writes are part of the game); each example uses model and
token names of its own in one database per dialect.
"""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.exceptions import MlflowException

from mlflow_hokusai.plugins.store.registry import registry_store_class
from tests.support.index_helpers import rebuilt_answers, service_answers

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BOB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
MODELS = ("a", "b", "c")
VERSIONS = st.integers(1, 5)
VALUES = {
    "hokusai_token_id": st.sampled_from(["t1", "T1", "t2"]),
    "benchmark_value": st.sampled_from(["0.5", "0.85", "0.9", "1", "-2"]),
    "benchmark_metric": st.sampled_from(["auc", "loss"]),
    "benchmark_direction": st.sampled_from(["higher", "lower"]),
    "hokusai_contributor": st.sampled_from([ALICE, BOB]),
    "hokusai_parent_version": st.sampled_from(["1", "2", "3", "4"]),
}
KEYS = st.sampled_from(sorted(VALUES))


@st.composite
def version_tags(draw):
    keys = draw(st.sets(KEYS, max_size=4))
    return {key: draw(VALUES[key]) for key in keys}


@st.composite
def tag(draw):
    key = draw(KEYS)
    return key, draw(VALUES[key])


OPERATIONS = st.one_of(
    st.tuples(st.just("create_model"), st.sampled_from(MODELS)),
    st.tuples(st.just("create_version"), st.sampled_from(MODELS), version_tags()),
    st.tuples(st.just("create_version"), st.sampled_from(MODELS), version_tags()),
    st.tuples(st.just("delete_version"), st.sampled_from(MODELS), VERSIONS),
    st.tuples(st.just("set_tag"), st.sampled_from(MODELS), VERSIONS, tag()),
    st.tuples(st.just("set_tag"), st.sampled_from(MODELS), VERSIONS, tag()),
    st.tuples(st.just("delete_tag"), st.sampled_from(MODELS), VERSIONS, KEYS),
    st.tuples(st.just("model_direction"), st.sampled_from(MODELS),
              st.sampled_from(["higher", "lower", None])),
    st.tuples(st.just("rename"), st.sampled_from(MODELS), st.sampled_from(MODELS)),
    st.tuples(st.just("delete_model"), st.sampled_from(MODELS)),
)


def _apply(store, names, tokens, operation):
    kind, model, *args = operation
    name = names[model]
    if kind == "create_model":
        store.create_registered_model(name)
    elif kind == "create_version":
        tags = {key: tokens[value] if key == "hokusai_token_id" else value
                for key, value in args[0].items()}
        store.create_model_version(name, "mlflow-artifacts:/m",
                                   tags=[ModelVersionTag(k, v) for k, v in tags.items()])
    elif kind == "delete_version":
        store.delete_model_version(name, str(args[0]))
    elif kind == "set_tag":
        key, value = args[1]
        value = tokens[value] if key == "hokusai_token_id" else value
        store.set_model_version_tag(name, str(args[0]), ModelVersionTag(key, value))
    elif kind == "delete_tag":
        store.delete_model_version_tag(name, str(args[0]), args[1])
    elif kind == "model_direction":
        if args[0] is None:
            store.delete_registered_model_tag(name, "benchmark_direction")
        else:
            store.set_registered_model_tag(name, RegisteredModelTag("benchmark_direction",
                                                                    args[0]))
    elif kind == "rename":
        store.rename_registered_model(name, names[args[0]])
    elif kind == "delete_model":
        store.delete_registered_model(name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory, make_postgres_database):
    uri = f"sqlite:///{tmp_path_factory.mktemp('properties')}/registry.db" \
        if request.param == "sqlite" else make_postgres_database()
    store = registry_store_class()(uri)
    yield store
    store.engine.dispose()


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=14))
def test_the_live_index_answers_as_its_rebuild(store, operations):
    run = uuid.uuid4().hex[:8]
    names = {model: f"{model}-{run}" for model in MODELS}
    # Two tokens, one of them also spelled in upper case (the same token).
    tokens = {"t1": f"tok1-{run}", "T1": f"TOK1-{run}", "t2": f"tok2-{run}"}
    for model in MODELS[:2]:
        store.create_registered_model(names[model])
    for operation in operations:
        try:
            _apply(store, names, tokens, operation)
        except MlflowException as refused:  # a refusal is an answer, never a server error
            assert refused.get_http_status_code() < 500, refused.message
    looked_up = (list(names.values()), list(tokens.values()), [ALICE, BOB])
    with store.ManagedSessionMaker() as session:
        live = service_answers(session, *looked_up)
    assert live == rebuilt_answers(store.engine, *looked_up)


def test_the_issues_sequence_gives_one_answer(store):
    """Issue 14, item 8: a tokenized model with baseline 0.85, version 1 re-set to
    0.9 with plain MLflow calls, version 2 at 0.95. The baseline is version 1's
    value now, so version 1 improves 0 over itself, before and after a rebuild."""
    name, token = f"m-{uuid.uuid4().hex[:8]}", f"tok-{uuid.uuid4().hex[:8]}"
    store.create_registered_model(name)
    store.create_model_version(name, "mlflow-artifacts:/m", tags=[
        ModelVersionTag("hokusai_token_id", token), ModelVersionTag("benchmark_value", "0.85"),
        ModelVersionTag("hokusai_contributor", ALICE)])
    store.set_model_version_tag(name, "1", ModelVersionTag("benchmark_value", "0.9"))
    store.create_model_version(name, "mlflow-artifacts:/m")
    store.set_model_version_tag(name, "2", ModelVersionTag("benchmark_value", "0.95"))
    store.set_model_version_tag(name, "2", ModelVersionTag("hokusai_contributor", ALICE))
    looked_up = ([name], [token], [ALICE])
    with store.ManagedSessionMaker() as session:
        live = service_answers(session, *looked_up)
    assert live[("token", token)]["baseline_value"] == 0.9
    lineage = live[("model", name)]["lineage"]
    assert [entry["improvement"] for entry in lineage] == [0.0, pytest.approx(0.05)]
    created = [store.get_model_version(name, v).creation_timestamp for v in ("1", "2")]
    assert [c["contributed_at"].timestamp() * 1000 for c in
            live[("contributor", ALICE)]["contributions"] if c["model_id"] == name] == created
    assert live == rebuilt_answers(store.engine, *looked_up)


def test_a_child_of_a_deleted_explicit_parent_follows_its_parent(store):
    """Version 4 names version 3 as its parent, 3 names 1, and 3 is deleted: 4
    descends from 1, as a rebuild (which reads 3's kept tags) finds too; version
    5, without the tag, follows the previous live version."""
    name = f"m-{uuid.uuid4().hex[:8]}"
    store.create_registered_model(name)
    for parent in (None, None, "1", "3", None):
        store.create_model_version(name, "mlflow-artifacts:/m", tags=[
            ModelVersionTag("hokusai_parent_version", parent)] if parent else [])
    store.delete_model_version(name, "3")
    looked_up = ([name], [], [])
    with store.ManagedSessionMaker() as session:
        live = service_answers(session, *looked_up)
    assert [p["version"] for p in live[("version", name, 4)]["parents"]] == [1]
    assert [p["version"] for p in live[("version", name, 5)]["parents"]] == [4, 1]
    store.delete_model_version(name, "4")
    with store.ManagedSessionMaker() as session:
        live = service_answers(session, *looked_up)
    assert [p["version"] for p in live[("version", name, 5)]["parents"]] == [2, 1]
    assert live == rebuilt_answers(store.engine, *looked_up)
