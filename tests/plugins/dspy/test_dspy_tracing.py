"""The shared DSPy trace experiment is the server's, in process: a real
Hokusai tracking store on SQLite, a request context with a key holder's
principal, and the Tracer that writes each execution's trace.

- The name is reserved: a key holder cannot create it first (and own, so
  MANAGE, everyone's traces) nor rename an experiment to it; an admin's
  creation gets no owner.
- One created by a caller before the name was reserved gets no traces, nor
  does a deleted one; the experiment is looked up on every execution.
- A caller who may not read the shared experiment (default permission
  NO_PERMISSIONS) still has their executions traced: the server writes there.
"""

from __future__ import annotations

import contextlib
import logging
from types import SimpleNamespace

import flask
import pytest
import sqlalchemy as sa
from mlflow.exceptions import MlflowException

from mlflow_hokusai.db.schema import owners
from mlflow_hokusai.pipeline import RequestContext, RequestInfo, current_context
from mlflow_hokusai.plugins import store as store_plugin
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.auth.gate import Principal
from mlflow_hokusai.plugins.dspy import records, tracing
from mlflow_hokusai.plugins.models import registry
from mlflow_hokusai.routes import Route
from mlflow_hokusai.settings import Settings

SHARED = "dspy-executions"


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = store_plugin.tracking_store(f"sqlite:///{tmp_path / 'mlflow.db'}",
                                        str(tmp_path / "artifacts"))
    monkeypatch.setattr(registry, "tracking_store", lambda: store)
    # Every resource is hidden from non-admin callers unless granted.
    monkeypatch.setattr(visibility, "_authorizer", SimpleNamespace(
        default="NO_PERMISSIONS", level=lambda *args: "NO_PERMISSIONS"))
    yield store
    store.engine.dispose()


@pytest.fixture
def server_app():
    """A Flask app context holding a Hokusai object that reserved SHARED, as
    the DSPy plugin's init_app does."""
    app = flask.Flask(__name__)
    app.extensions["hokusai"] = SimpleNamespace(reserved_experiments={SHARED})
    with app.app_context():
        yield app


@contextlib.contextmanager
def request_by(username: str, scopes: str, route_scope: str = "read"):
    principal = Principal(username, "api_key", frozenset(scopes.split(",")),
                          key_id=f"key-{username}")
    context = RequestContext(RequestInfo("POST", "/api/v1/dspy/execute", {}, "", "127.0.0.1"),
                             principal=principal,
                             route=Route("POST", "/api/v1/dspy/execute", "execute",
                                         route_scope))
    token = current_context.set(context)
    try:
        yield
    finally:
        current_context.reset(token)


def _owner_row(store, experiment_id: str):
    with store.engine.connect() as connection:
        return connection.execute(sa.select(owners.c.owner, owners.c.owner_key_id).where(
            owners.c.resource_type == "experiment",
            owners.c.resource_id == str(experiment_id))).first()


def _execution(principal: str = "bob") -> records.Execution:
    return records.Execution(records.new_id(), "capital", 1, "normal", True,
                             {"country": "France"}, {"capital": "Paris"}, None, 0.01, principal)


def _traces(store, experiment_id: str) -> list:
    return store.search_traces(locations=[experiment_id])[0]


def test_a_key_holder_can_neither_create_nor_rename_to_the_reserved_name(tracking, server_app):
    with request_by("bob", "read,write", route_scope="write"):
        with pytest.raises(MlflowException, match="reserved") as refused:
            tracking.create_experiment(SHARED)
        assert refused.value.get_http_status_code() == 403
        own = tracking.create_experiment("bobs-experiment")
        with pytest.raises(MlflowException, match="reserved"):
            tracking.rename_experiment(own, SHARED)
    assert tracking.get_experiment_by_name(SHARED) is None
    assert tracking.get_experiment(own).name == "bobs-experiment"
    assert _owner_row(tracking, own).owner == "bob"  # other names are owned as always


def test_an_admin_creates_it_without_an_owner(tracking, server_app):
    with request_by("root", "admin", route_scope="write"):
        experiment_id = tracking.create_experiment(SHARED)
    row = _owner_row(tracking, experiment_id)
    assert row is not None and row.owner is None and row.owner_key_id is None


def test_a_caller_who_may_not_read_it_is_still_traced(tracking, server_app):
    tracer = tracing.Tracer(Settings(dspy_experiment=SHARED))
    with request_by("bob", "read"):
        # The caller's own view of the store hides every experiment.
        assert tracking.get_experiment_by_name("Default") is None
        trace_id, experiment_id = tracer(_execution(), [], None)
    assert trace_id is not None
    assert tracking.get_experiment(experiment_id).name == SHARED
    assert _owner_row(tracking, experiment_id).owner is None  # created by the server
    assert [t.trace_id for t in _traces(tracking, experiment_id)] == [trace_id]
    with request_by("bob", "read"):  # and again, with the experiment's id remembered
        assert tracer(_execution(), [], None)[0] is not None
    assert len(_traces(tracking, experiment_id)) == 2


def test_an_owned_shared_experiment_gets_no_traces(tracking, caplog):
    # Created by a caller before the name was reserved (no app context: nothing
    # is reserved), so the caller owns it.
    with request_by("mallory", "read,write", route_scope="write"):
        squatted = tracking.create_experiment(SHARED)
    assert _owner_row(tracking, squatted).owner == "mallory"
    tracer = tracing.Tracer(Settings(dspy_experiment=SHARED))
    with caplog.at_level(logging.WARNING, logger=tracing.__name__), request_by("bob", "read"):
        assert tracer(_execution(), [], None) == (None, None)
    assert _traces(tracking, squatted) == []
    assert "owned by 'mallory' (key key-mallory)" in caplog.text
    assert "rename it away with an admin key" in caplog.text
    # Renamed away (the fix the warning names), the server makes a new one of its own.
    with request_by("root", "admin", route_scope="write"):
        tracking.rename_experiment(squatted, "mallorys-old-traces")
    with request_by("bob", "read"):
        trace_id, experiment_id = tracer(_execution(), [], None)
    assert trace_id is not None and experiment_id != squatted
    assert _owner_row(tracking, experiment_id).owner is None


def test_a_deleted_shared_experiment_gets_no_traces(tracking, server_app, caplog):
    tracer = tracing.Tracer(Settings(dspy_experiment=SHARED))
    with request_by("bob", "read"):
        experiment_id = tracer(_execution(), [], None)[1]
    tracking.delete_experiment(experiment_id)
    with caplog.at_level(logging.WARNING, logger=tracing.__name__), request_by("bob", "read"):
        assert tracer(_execution(), [], None) == (None, None)
    assert "is deleted" in caplog.text
    tracking.restore_experiment(experiment_id)
    with request_by("bob", "read"):
        assert tracer(_execution(), [], None)[1] == experiment_id  # seen again at once
