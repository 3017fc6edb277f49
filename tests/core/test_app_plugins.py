"""Plugins are installed into one app: two apps with different settings and
plugins live side by side in one process, and a plugin whose needs are not
installed before it is refused with both names."""

import flask
import prometheus_client
import pytest

from mlflow_hokusai import signals
from mlflow_hokusai.app import BUILTIN_PLUGINS, Hokusai
from mlflow_hokusai.errors import ConfigurationError
from mlflow_hokusai.plugins.auth import permissions
from tests.support.apps import serve, settings

DSPY, MONITORING = "mlflow_hokusai.plugins.dspy", "mlflow_hokusai.plugins.monitoring"

# Apps register their store builders in MLflow's process-wide registries.
pytestmark = pytest.mark.usefixtures("mlflow_store_builders_restored")


@pytest.fixture
def two_apps(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    full = Hokusai(settings(tmp_path), f"sqlite:///{tmp_path / 'full.db'}")
    lean = Hokusai(settings(tmp_path, HOKUSAI_METRICS_REQUIRE_AUTH="true",
                            HOKUSAI_AUDIT_ENABLED="false", HOKUSAI_GATEWAY_SCOPE="read"),
                   f"sqlite:///{tmp_path / 'lean.db'}",
                   plugins=tuple(p for p in BUILTIN_PLUGINS if p not in (DSPY, MONITORING)))
    apps = serve("full", full), serve("lean", lean)
    yield (full, lean), apps
    for hokusai in (full, lean):
        hokusai.receivers.disconnect()
        hokusai.pipeline.shutdown()


def test_rules_and_public_paths_of_one_app_do_not_reach_another(two_apps):
    (full, lean), (full_app, lean_app) = two_apps
    assert "dspy" in full.installed and "dspy" not in lean.installed
    # The DSPy plugin's rule (running a program only reads it) is the full app's.
    assert full.routes.resolve("POST", "/api/v1/dspy/execute").route.scope == "read"
    for path in ("/api/v1/dspy/execute", "/api/v1/dspy/execute/batch"):  # sandboxed runs
        assert full.routes.resolve("POST", path).route.rate_group == "dspy"
    assert lean.routes.resolve("POST", "/api/v1/dspy/execute").route.scope == "write"
    assert permissions.required_scope("POST", "/api/v1/monitoring/m/feedback",
                                      full.routes.rules) == "read"
    assert permissions.required_scope("POST", "/api/v1/monitoring/m/feedback",
                                      lean.routes.rules) == "write"
    # Calling the AI gateway spends the provider secrets admins stored: admin
    # unless HOKUSAI_GATEWAY_SCOPE opens it, audited whatever the scope; listing
    # its endpoints is a read.
    for path in ("/gateway/e/mlflow/invocations", "/gateway/mlflow/v1/chat/completions",
                 "/gateway/openai/v1/chat/completions", "/ajax-api/2.0/mlflow/gateway-proxy"):
        assert permissions.required_scope("POST", path, full.routes.rules) == "admin"
        assert permissions.required_scope("POST", path, lean.routes.rules) == "read"
        assert lean.routes.resolve("POST", path).route.audited
    assert permissions.required_scope("GET", "/gateway/mlflow/v1/models", full.routes.rules) == \
        "read"
    # Rules both install stay in each: the audit trail is the admin's.
    for hokusai in (full, lean):
        assert hokusai.routes.resolve("GET", "/api/audit").route.scope == "admin"
    # Public paths, through each app's own pipeline.
    full_client, lean_client = full_app.test_client(), lean_app.test_client()
    assert full_client.get("/api/v1/dspy/health").status_code == 200
    assert lean_client.get("/api/v1/dspy/health").status_code == 401
    assert full_client.get("/metrics").status_code == 200  # HOKUSAI_METRICS_REQUIRE_AUTH
    assert lean_client.get("/metrics").status_code == 401
    assert "/metrics" in full.routes.public_paths and "/metrics" not in lean.routes.public_paths
    for client in (full_client, lean_client):  # the health plugin's, in both
        assert client.get("/api/version").status_code == 200


def _requests_counted(route: str, status: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(
        "hokusai_http_requests_total", {"method": "GET", "route": route, "status": status}) or 0


def test_receivers_of_one_app_do_not_hear_another(two_apps):
    (full, lean), (full_app, lean_app) = two_apps
    # Both apps count requests into the process's metrics: each its own, once.
    before = _requests_counted("/metrics", "401")
    assert lean_app.test_client().get("/metrics").status_code == 401
    assert _requests_counted("/metrics", "401") == before + 1
    # Both record contributions: an event of one app's context is its ledger's only.
    event = {"event": "contributor_linked", "token_id": None, "model_name": None,
             "version": None, "principal": "ada", "data": {"address": "0xabc"}}
    with lean_app.app_context():
        signals.contribution_recorded.send("test", **event)
    assert [row["principal"] for row in lean.ledger.entries()] == ["ada"]
    assert full.ledger.entries() == []
    # Served predictions are monitored by the app that served them, if it monitors.
    outcomes = full.monitoring.outcomes
    for app, request_id in ((lean_app, "lean-1"), (full_app, "full-1")):
        with app.app_context():
            signals.prediction_served.send(None, model_name="m", version=1,
                                           request_id=request_id, records=1, predictions=[1],
                                           latency_ms=3, error=None, user="ada")
    outcomes.flush()
    assert outcomes.find("lean-1") is None
    assert outcomes.find("full-1").recorded_by == "ada"


def test_a_plugin_installed_before_what_it_needs_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    without_serving = tuple(p for p in BUILTIN_PLUGINS if p != "mlflow_hokusai.plugins.serving")
    hokusai = Hokusai(settings(tmp_path), f"sqlite:///{tmp_path / 'needs.db'}",
                      plugins=without_serving)
    try:
        with pytest.raises(ConfigurationError, match=r"Plugin 'monitoring' needs 'serving' "
                                                     r"installed before it"):
            hokusai.init_app(flask.Flask("needs"))
        assert "monitoring" not in hokusai.installed and "dspy" in hokusai.installed
        # Order matters, not only presence: metrics before the health plugin.
        early = Hokusai(settings(tmp_path), f"sqlite:///{tmp_path / 'early.db'}",
                        plugins=("mlflow_hokusai.plugins.metrics",
                                 "mlflow_hokusai.plugins.health"))
        with pytest.raises(ConfigurationError, match="'metrics' needs 'health', 'ratelimit'"):
            early.init_app(flask.Flask("early"))
    finally:
        hokusai.receivers.disconnect()
        hokusai.pipeline.shutdown()


def test_without_dspy_the_routes_answer_501_over_http(tmp_path, monkeypatch):
    from mlflow_hokusai.plugins import dspy

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setattr(dspy, "dspy_installed", lambda: False)
    hokusai = Hokusai(settings(tmp_path), f"sqlite:///{tmp_path / 'no-dspy.db'}")
    app = serve("no-dspy", hokusai)
    try:
        _, key = hokusai.keystore.create("no-dspy", scopes=("read", "write", "admin"))
        client = app.test_client()
        for method, path, body in [
                ("GET", "/api/v1/dspy/health", None), ("GET", "/api/v1/dspy/programs", None),
                ("GET", "/api/v1/dspy/stats", None),
                ("GET", "/api/v1/dspy/execution/" + "0" * 32, None),
                ("POST", "/api/v1/dspy/execute", {"program_id": "p", "inputs": {}}),
                ("POST", "/api/v1/dspy/execute/batch", {"program_id": "p", "inputs_list": [{}]}),
                ("POST", "/api/v1/dspy/cache/clear", {})]:
            answer = client.open(path, method=method, json=body, headers={"X-API-Key": key})
            assert answer.status_code == 501, (path, answer.get_data(as_text=True))
            assert "pip install 'mlflow-hokusai[dspy]'" in answer.get_data(as_text=True), path
    finally:
        hokusai.receivers.disconnect()
        hokusai.pipeline.shutdown()
