"""What Hokusai keeps under a registered model's name follows the model through
MLflow's own rename and delete routes, on both server kinds: deployments, batch
jobs, prediction counts and samples, monitored predictions, drift checks and
results, contributor claims and verified values. A later model of a deleted
model's name (another principal's) starts with none of them."""

from __future__ import annotations

import concurrent.futures
import uuid

import flask
import pytest
import sqlalchemy as sa
from mlflow.exceptions import MlflowException

from mlflow_hokusai import signals
from mlflow_hokusai.app import Hokusai
from mlflow_hokusai.db import model_rows, schema
from mlflow_hokusai.db.engine import get_engine, to_sqlalchemy_url
from mlflow_hokusai.plugins.store.registry import registry_store_class
from tests.support.apps import serve, settings
from tests.support.callers import API

FAR = 4_102_444_800_000  # 2100: no scheduled check or retention reaches these rows


def _rows() -> dict[sa.Table, dict]:
    """One row of each table, as little as each needs, in states the server's
    background work leaves alone (a failed deployment, a failed batch job, a
    drift check due in 2100)."""
    tag = uuid.uuid4().hex
    return {
        schema.deployments: {"id": tag, "version": 1, "replicas": 1, "status": "failed",
                             "reason": "test row", "created_at": 1, "updated_at": 1},
        schema.batch_jobs: {"id": tag, "input_path": "x", "output_path": "y", "batch_size": 1,
                            "status": "failed", "created_at": 1, "updated_at": 1},
        schema.predictions: {"model_version": 1, "predicted_at": FAR},
        schema.prediction_samples: {"model_version": 1, "sampled_at": FAR,
                                    "inputs": '{"secret": 1}'},
        schema.monitored_predictions: {"model_version": 1, "predicted_at": FAR, "records": 1},
        schema.drift_checks: {"interval_minutes": 60, "period_hours": 1, "method": "psi",
                              "threshold": 0.1, "log_to_mlflow": False, "next_run_at": FAR,
                              "updated_at": 1},
        schema.drift_results: {"model_version": 1, "checked_at": FAR},
        schema.contributor_claims: {"version": 1, "address": "0x" + "ab" * 20,
                                    "proof": "admin", "set_at": 1},
        schema.verified_values: {"version": 1, "value": 0.5, "source": "measured",
                                 "recorded_at": 1},
    }


def _count(engine, name: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: connection.execute(
            sa.select(sa.func.count()).select_from(table)
            .where(table.c.model_name == name)).scalar_one() for table in _rows()}


def test_rows_follow_a_renamed_model_and_go_with_a_deleted_one(team):
    server, owner, other, _, tag = team
    engine = get_engine(to_sqlalchemy_url(server.database_uri))
    name, renamed = f"rows-{tag}", f"rows-renamed-{tag}"
    owner.ok("POST", f"{API}/registered-models/create", json={"name": name})
    with engine.begin() as connection:
        for table, values in _rows().items():
            connection.execute(table.insert().values(model_name=name, **values))
    everything = {table.name: 1 for table in _rows()}
    none = {table.name: 0 for table in _rows()}
    assert _count(engine, name) == everything

    # MLflow answers a rename to the same name 200: it must move (or drop) nothing.
    owner.ok("POST", f"{API}/registered-models/rename", json={"name": name, "new_name": name})
    assert _count(engine, name) == everything

    owner.ok("POST", f"{API}/registered-models/rename", json={"name": name, "new_name": renamed})
    assert _count(engine, name) == none
    assert _count(engine, renamed) == everything

    owner.ok("DELETE", f"{API}/registered-models/delete", json={"name": renamed})
    assert _count(engine, renamed) == none

    # Another principal takes the name: nothing of the first model's reaches it.
    other.ok("POST", f"{API}/registered-models/create", json={"name": renamed})
    assert _count(engine, renamed) == none


def test_a_refused_delete_moves_nothing(team):
    server, owner, other, _, tag = team
    engine = get_engine(to_sqlalchemy_url(server.database_uri))
    name = f"rows-kept-{tag}"
    owner.ok("POST", f"{API}/registered-models/create", json={"name": name})
    with engine.begin() as connection:
        connection.execute(schema.prediction_samples.insert().values(
            model_name=name, **_rows()[schema.prediction_samples]))
    refused = other("DELETE", f"{API}/registered-models/delete", json={"name": name})
    assert refused.status_code == 403, refused.text
    missing = owner("DELETE", f"{API}/registered-models/delete", json={"name": name + "-x"})
    assert missing.status_code == 404, missing.text
    assert _count(engine, name)["hokusai_prediction_samples"] == 1


# -- in the process: MLflow's transaction, with Hokusai's tables in its database or not

# Hokusai's database: MLflow's, spelled as MLflow's or otherwise (relative to
# the folder above: engines are cached by URI), or another.
_LAYOUTS = {"shared": "sqlite:///{tmp}/mlflow.db", "shared-respelled": "sqlite:///{name}/mlflow.db",
            "separate": "sqlite:///{tmp}/hokusai.db"}


@pytest.fixture(params=sorted(_LAYOUTS))
def registry(request, tmp_path, monkeypatch, mlflow_store_builders_restored):
    """An app whose plugins follow models, and Hokusai's registry store on its
    own MLflow database: Hokusai's tables in that database (its URI spelled as
    MLflow's, or as a relative path), or in another."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.chdir(tmp_path.parent)
    mlflow_db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shared = request.param.startswith("shared")
    hokusai = Hokusai(settings(tmp_path), _LAYOUTS[request.param].format(tmp=tmp_path,
                                                                         name=tmp_path.name))
    app = serve("rows", hokusai)
    store = registry_store_class(False)(mlflow_db)
    with app.test_request_context():
        yield shared, hokusai, store
    hokusai.receivers.disconnect()
    hokusai.pipeline.shutdown()


@pytest.mark.parametrize(("one", "other", "same"), [
    ("postgresql://u@db:5432/m", "postgresql+psycopg2://u@db/m", True),
    ("mysql+pymysql://u:p@db/m", "mysql://u:q@db:3306/m", True),
    ("sqlite:///m.db", "sqlite:///{cwd}/m.db", True),
    ("postgresql://u@db/m", "postgresql://u@db/other", False),
    ("postgresql://u@db/m", "postgresql://v@db/m", False),
    ("postgresql://u@db/m", "postgresql://u@db:5433/m", False),
    ("postgresql://u@localhost/m", "postgresql://u@127.0.0.1/m", False),
    ("postgresql://u@db/m", "postgresql://u@db/m?options=-csearch_path%3Dh", False),
    ("postgresql://u@db/m", "mysql://u@db/m", False),
    ("sqlite:///m.db", "sqlite:///n.db", False),
    ("sqlite://", "sqlite:///m.db", False),
])
def test_one_database_however_its_uri_is_spelled(one, other, same, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = other.format(cwd=tmp_path)
    assert (model_rows.database_of(one) == model_rows.database_of(other)) is same


def _fill(engine, name: str) -> None:
    with engine.begin() as connection:
        for table, values in _rows().items():
            connection.execute(table.insert().values(model_name=name, **values))


# A plugin's table its database does not have: its move fails.
_MISSING = sa.Table("hokusai_missing", sa.MetaData(), sa.Column("model_name", sa.String))


def test_rows_move_with_mlflows_transaction(registry):
    shared, hokusai, store = registry
    everything = {table.name: 1 for table in _rows()}
    none = {table.name: 0 for table in _rows()}
    store.create_registered_model("m")
    _fill(hokusai.engine, "m")
    store.rename_registered_model("m", "n")
    assert (_count(hokusai.engine, "m"), _count(hokusai.engine, "n")) == (none, everything)
    store.delete_registered_model("n")
    assert _count(hokusai.engine, "n") == none


def test_a_failing_plugin_undoes_the_rename_or_only_its_own_move(registry, caplog):
    shared, hokusai, store = registry
    store.create_registered_model("m")
    _fill(hokusai.engine, "m")
    hokusai.connect(signals.model_changed, model_rows.follower(hokusai, _MISSING))
    if shared:
        # One transaction: neither MLflow's rename nor any plugin's move happened.
        with pytest.raises(MlflowException, match="could not follow the model's change") as refused:
            store.rename_registered_model("m", "n")
        assert refused.value.error_code == "INTERNAL_ERROR"  # not the request's fault
        assert store.get_registered_model("m").name == "m"
        assert _count(hokusai.engine, "m") == {table.name: 1 for table in _rows()}
    else:
        # Another database: MLflow's rename stands, the other plugins' rows follow
        # it, and the failure is logged.
        store.rename_registered_model("m", "n")
        assert store.get_registered_model("n").name == "n"
        assert _count(hokusai.engine, "n") == {table.name: 1 for table in _rows()}
        assert "did not follow the model's change" in caplog.text


def _grant(engine, name: str, principal: str) -> None:
    with engine.begin() as connection:
        connection.execute(schema.grants.insert().values(
            workspace="", resource_type="registered_model", resource_id=name,
            principal=principal, permission="MANAGE", granted_at=1))


def _grantees(engine, name: str) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(schema.grants.c.principal).where(
            schema.grants.c.resource_id == name)).scalars())


def test_a_new_model_starts_without_what_an_earlier_one_left(registry):
    """Rows and a grant a model of the name left (deleted outside the server:
    a hokusai+ client, a workspace deleted with its models) are not the next
    creator's."""
    shared, hokusai, store = registry
    _fill(hokusai.engine, "m")
    _grant(hokusai.engine, "m", "mallory")
    store.create_registered_model("m")
    assert _count(hokusai.engine, "m") == {table.name: 0 for table in _rows()}
    assert _grantees(hokusai.engine, "m") == set()


def test_a_renamed_model_takes_no_grant_left_on_its_new_name(registry):
    shared, hokusai, store = registry
    store.create_registered_model("a")
    for name, principal in (("a", "alice"), ("a", "carol"), ("b", "mallory"), ("b", "carol")):
        _grant(hokusai.engine, name, principal)
    store.rename_registered_model("a", "b")
    assert _grantees(hokusai.engine, "b") == {"alice", "carol"}
    assert _grantees(hokusai.engine, "a") == set()


def test_another_registry_store_of_the_process_leaves_the_apps_rows(registry, tmp_path):
    """A script's or a test's own store, outside the app's requests, changes
    its own registry only."""
    shared, hokusai, store = registry
    store.create_registered_model("m")
    _fill(hokusai.engine, "m")
    _grant(hokusai.engine, "m", "alice")
    other = registry_store_class(False)(f"sqlite:///{tmp_path / 'other.db'}")

    def elsewhere():
        other.create_registered_model("m")
        other.delete_registered_model("m")

    # A thread of its own: outside any app's context, and then in another app's.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(elsewhere).result()
        thread.submit(lambda: flask.Flask("elsewhere").app_context().push() or elsewhere()
                      ).result()
    assert _count(hokusai.engine, "m") == {table.name: 1 for table in _rows()}
    assert _grantees(hokusai.engine, "m") == {"alice"}
