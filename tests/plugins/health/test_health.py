"""Health, readiness, liveness, version and breaker-control endpoints: shapes,
status codes, and who may call them."""

import datetime

import mlflow
import pytest
import requests
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.credentials import get_default_host_creds
from packaging.version import Version

import mlflow_hokusai

PUBLIC_HEALTH = ["/health", "/ready", "/live", "/version", "/health/mlflow",
                 "/api/health/mlflow", "/mlflow/health/mlflow", "/api/health/mlflow/detailed",
                 "/mlflow/health/mlflow/detailed", "/api/health/mlflow/connectivity", "/metrics",
                 # The API reference's base URL is /api (issue 20).
                 "/api/health", "/api/ready", "/api/live", "/api/version", "/api/metrics"]


def get(server, path, key=None, headers=None):
    headers = {**(headers or {}), **({"X-API-Key": key} if key else {})}
    return requests.get(server.url + path, headers=headers, timeout=30)


def is_iso_utc(value):
    return datetime.datetime.fromisoformat(value).utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("path", PUBLIC_HEALTH)
def test_public_probes_answer_without_credentials_and_only_to_get(each_server_kind, path):
    assert get(each_server_kind, path).status_code == 200
    assert requests.post(each_server_kind.url + path, timeout=30).status_code == 401


def test_health(each_server_kind):
    body = get(each_server_kind, "/health").json()
    assert body["status"] == "healthy" and body["version"] == mlflow_hokusai.__version__
    expected = {"mlflow": "healthy", "database": "healthy", "redis": "disabled"}
    if each_server_kind.database_uri.startswith("postgresql"):
        expected["postgres"] = "healthy"  # the API reference's name for it
    assert body["services"] == expected
    assert is_iso_utc(body["timestamp"])


def test_ready(each_server_kind):
    body = get(each_server_kind, "/ready").json()
    assert body["ready"] is True and body["can_serve_traffic"] is True
    assert body["degraded_mode"] is False
    checks = {c["name"]: c for c in body["checks"]}
    assert set(checks) == {"database", "connectivity", "experiments_api", "registry_api",
                           "artifacts_api", "circuit_breaker"}
    assert checks["database"]["critical"] is True and checks["artifacts_api"]["critical"] is False
    assert all(c["passed"] and c["error"] is None for c in checks.values())


def test_live(each_server_kind):
    body = get(each_server_kind, "/live").json()
    assert body["alive"] is True and body["uptime"] > 0 and body["memory_usage_mb"] > 10


def test_version_json_and_plain_for_mlflow_clients(each_server_kind):
    body = get(each_server_kind, "/version").json()
    assert body == {"version": mlflow_hokusai.__version__, "build_date": "unknown",
                    "git_commit": "unknown", "api_version": "v1",
                    "mlflow_version": mlflow.__version__}
    plain = get(each_server_kind, "/version", headers={"Accept": "text/plain"})
    assert plain.text == mlflow.__version__
    # The unmodified MLflow client reads /version as a bare version (it gates log_spans).
    assert RestStore._get_server_version(get_default_host_creds(each_server_kind.url)) == \
        Version(mlflow.__version__)


@pytest.mark.parametrize("path", ["/health/mlflow", "/api/health/mlflow",
                                  "/mlflow/health/mlflow"])
def test_mlflow_health(each_server_kind, path):
    body = get(each_server_kind, path).json()
    assert body["status"] == "healthy" and body["connected"] is True
    assert body["circuit_breaker_state"] == "CLOSED"  # as the API reference writes it
    assert body["circuit_breaker"]["failure_count"] == 0
    assert body["mlflow_server"] == each_server_kind.url
    for name in ("connectivity", "experiments_api", "artifacts_api"):
        assert body["checks"][name]["status"] == "healthy"
        assert body["checks"][name]["check_status"] == "pass"
        assert body["checks"][name]["passed"] is True and body["checks"][name]["message"]
        assert body["checks"][name]["response_time_ms"] > 0


@pytest.mark.parametrize("path", ["/api/health/mlflow/detailed",
                                  "/mlflow/health/mlflow/detailed"])
def test_mlflow_health_detailed(each_server_kind, path):
    body = get(each_server_kind, path).json()
    assert body["overall_health"] is True and body["overall_status"] == "healthy"
    assert {t["endpoint"] for t in body["tests"]} == set(body["checks"])
    assert all(t["success"] and t["status_code"] == 200 for t in body["tests"])
    assert set(body["checks"]) == {"connectivity", "experiments_api", "artifacts_api",
                                   "registry_api", "database", "circuit_breaker"}
    assert all(isinstance(c["response_time_ms"], float) for c in body["checks"].values())


def test_connectivity(each_server_kind):
    body = get(each_server_kind, "/api/health/mlflow/connectivity").json()
    assert body["status"] == "connected" and body["response_time_ms"] > 0
    assert body["response_code"] == 200 and body["mlflow_server"] == each_server_kind.url


def test_status_needs_read_scope(each_server_kind):
    assert get(each_server_kind, "/health/status").status_code == 401
    body = get(each_server_kind, "/health/status", each_server_kind.create_key("read")).json()
    assert body["status"] == "healthy" and body["environment"] == "production"
    assert body["circuit_breaker"]["state"] == "closed"
    assert body["circuit_breaker"]["last_failure_time"] is None
    assert body["process"]["memory_mb"] > 10 and body["process"]["pid"] > 1
    assert body["uptime_seconds"] > 0 and body["services"]["database"] == "healthy"


def test_breaker_reset_needs_admin(each_server_kind):
    url = each_server_kind.url + "/health/mlflow/reset"
    assert requests.post(url, timeout=30).status_code == 401
    writer = requests.post(url, headers={"X-API-Key": each_server_kind.create_key("read,write")},
                           timeout=30)
    assert writer.status_code == 403 and writer.json()["required_scope"] == "admin"
    admin = requests.post(url, headers={"X-API-Key": each_server_kind.admin_key}, timeout=30)
    assert admin.status_code == 200
    assert admin.json()["reset_by"] == "admin" and admin.json()["circuit_breaker_state"] == \
        "closed"


def test_metrics_is_prometheus_text(each_server_kind):
    response = get(each_server_kind, "/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE hokusai_http_requests_total counter" in response.text
    assert f'hokusai_build_info{{git_commit="unknown",mlflow_version="{mlflow.__version__}"' \
        in response.text
