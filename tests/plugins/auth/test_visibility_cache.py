"""A private server's searches decide from the permission caches when these
hold every experiment named (no query of their own), and ask the database
otherwise (in-process; the end-to-end behaviour: tests/plugins/auth/test_visibility.py)."""

from __future__ import annotations

import types

import pytest

from mlflow_hokusai.pipeline import RequestContext, RequestInfo, current_context
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.auth.authorize import Authorizer
from mlflow_hokusai.plugins.auth.grants import Grants
from mlflow_hokusai.plugins.auth.ownership import EXPERIMENT, Ownership


class _NoDatabase:
    """A session that fails the test if the search asks the database."""

    def __init__(self):
        self.asked = 0

    def execute(self, *args, **kwargs):
        self.asked += 1
        raise AssertionError("asked the database")


@pytest.fixture
def alice_searching(monkeypatch):
    ownership, grants = Ownership(60), Grants(engine=None, ttl_seconds=60)
    authorizer = Authorizer(types.SimpleNamespace(default_permission="NO_PERMISSIONS"),
                            grants, ownership)
    monkeypatch.setattr(visibility, "_authorizer", authorizer)
    context = RequestContext(RequestInfo("POST", "/x", {}, "", None))
    context.principal = types.SimpleNamespace(username="alice", scopes={"read", "write"})
    token = current_context.set(context)
    with visibility.searching():
        yield ownership, grants
    current_context.reset(token)


def test_cached_levels_decide_as_the_sql_rule(alice_searching):
    ownership, grants = alice_searching
    ownership._owners.put((EXPERIMENT, "1", ""), "alice")  # owned
    ownership._owners.put((EXPERIMENT, "2", ""), "bob")  # granted READ
    grants._cache.put(("", EXPERIMENT, "2", "alice"), "READ")
    ownership._owners.put((EXPERIMENT, "3", ""), "bob")  # nothing granted: the default
    grants._cache.put(("", EXPERIMENT, "3", "alice"), None)
    ownership._owners.put((EXPERIMENT, "4", ""), None)  # no owner recorded, EDIT granted
    grants._cache.put(("", EXPERIMENT, "4", "alice"), "EDIT")
    session = _NoDatabase()
    assert visibility.visible_experiment_ids(session, ["1", "2", "3", "4", "01"]) == \
        ["1", "2", "4", "01"]
    assert session.asked == 0


@pytest.mark.parametrize("ids", [["1", "5"], ["1", "x"]])
def test_anything_not_cached_asks_the_database(alice_searching, ids):
    ownership, grants = alice_searching
    ownership._owners.put((EXPERIMENT, "1", ""), "alice")
    ownership._owners.put((EXPERIMENT, "5", ""), "bob")  # its grant was never read
    grants._by_principal.put(("", EXPERIMENT, "alice"), [])  # what the SQL clause reads
    session = _NoDatabase()
    with pytest.raises(AssertionError, match="asked the database"):
        visibility.visible_experiment_ids(session, ids)
    assert session.asked == 1
