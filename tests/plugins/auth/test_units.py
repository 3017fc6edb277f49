"""Pure-logic units: key format, scopes, the permission table, settings."""

import dataclasses
import math
import re

import pytest

from mlflow_hokusai.errors import ConfigurationError
from mlflow_hokusai.plugins.auth import keys, permissions, scopes
from mlflow_hokusai.settings import Settings, markdown_table
from tests.support.clock import FakeClock


def test_key_format_entropy_and_checksum():
    generated = {keys.generate() for _ in range(200)}
    assert len(generated) == 200
    for key in generated:
        assert re.fullmatch(r"hk_live_[0-9A-Za-z]{36}", key) and keys.is_well_formed(key)
    assert keys.BODY_LENGTH * math.log2(62) >= 160
    assert keys.generate("test").startswith("hk_test_")
    key = keys.generate()
    typo = key[:10] + ("a" if key[10] != "a" else "b") + key[11:]
    assert not keys.is_well_formed(typo)
    assert keys.hash_key(key) != keys.hash_key(typo) and len(keys.hash_key(key)) == 64
    assert keys.display_prefix(key) == key[:12]


def test_scope_hierarchy_and_parsing():
    assert scopes.grants({"admin"}, "write") and scopes.grants({"write"}, "read")
    assert not scopes.grants({"read"}, "write") and not scopes.grants({"write"}, "admin")
    assert scopes.parse("write, read,read") == ("read", "write")
    with pytest.raises(ValueError):
        scopes.parse("read,root")


@pytest.mark.parametrize("method,path,scope", [
    ("GET", "/api/2.0/mlflow/runs/get", "read"),
    ("POST", "/api/2.0/mlflow/runs/search", "read"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search", "read"),
    ("POST", "/api/2.0mlflow/experiments/search-datasets", "read"),
    ("POST", "/api/3.0/mlflow/traces/search", "read"),
    ("POST", "/graphql", "read"),
    ("POST", "/api/2.0/mlflow/runs/log-batch", "write"),
    ("POST", "/api/2.0/mlflow/runs/search-but-not-really", "write"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/a/b", "write"),
    ("DELETE", "/api/2.0/mlflow/registered-models/delete", "write"),
    ("GET", "/api/keys", "admin"),
    ("POST", "/api/keys/abc/rotate", "admin"),
    ("POST", "/api/3.0/mlflow/gateway/secrets/create", "admin"),
    ("POST", "/api/3.0/mlflow/gateway/endpoints/update", "admin"),
    ("DELETE", "/ajax-api/3.0/mlflow/gateway/endpoints/delete", "admin"),
    ("POST", "/api/3.0/mlflow/gateway/budgets/create", "admin"),
    ("GET", "/api/3.0/mlflow/gateway/guardrails/list", "admin"),
    ("GET", "/api/3.0/mlflow/gateway/endpoints/list", "read"),
    ("GET", "/api/2.0/mlflow/webhooks", "admin"),
    ("POST", "/ajax-api/2.0/mlflow/webhooks/abc/test", "admin"),
    ("PATCH", "/api/2.0/mlflow/webhooks/abc", "admin"),
    ("POST", "/ajax-api/3.0/mlflow/demo/delete", "admin"),
    ("POST", "/ajax-api/3.0/mlflow/demo/generate", "write"),
    ("POST", "/ajax-api/3.0/mlflow/assistant/skills/install", "admin"),
])
def test_permission_table(method, path, scope):
    assert permissions.required_scope(method, path) == scope


def test_public_allow_list_is_exact():
    assert permissions.is_public("GET", "/health", {})
    assert permissions.is_public("HEAD", "/version", {})
    assert permissions.is_public("GET", "/static-files/js/main.js", {})
    for method, path in [("POST", "/health"), ("GET", "/health/mlflow/reset"),
                         ("GET", "/static-files/../x"), ("GET", "/static-files//etc/passwd"),
                         ("GET", "/static-files/a%2f..")]:
        assert not permissions.is_public(method, path, {})
    preflight = {"origin": "http://x", "access-control-request-method": "POST"}
    assert permissions.is_public("OPTIONS", "/api/keys", preflight)
    assert not permissions.is_public("OPTIONS", "/api/keys", {})


def test_settings_parse_and_validate():
    settings = Settings.from_env({"HOKUSAI_ALLOW_QUERY_KEY": "false",
                                  "HOKUSAI_KEY_CACHE_TTL_SECONDS": "0.5",
                                  "HOKUSAI_JWT_ALGORITHMS": "RS256, ES256"})
    assert settings.allow_query_key is False and settings.key_cache_ttl_seconds == 0.5
    assert settings.jwt_algorithms == ("RS256", "ES256")
    assert Settings.from_env({}).default_tier == "standard"
    for env, message in [({"HOKUSAI_KEY_CACHE_TTL_SECONDS": "5"}, "between 0 and 1"),
                         ({"HOKUSAI_ALLOW_QUERY_KEY": "maybe"}, "true or false"),
                         ({"HOKUSAI_KEY_ENVIRONMENT": "prod"}, "live, test")]:
        with pytest.raises(ConfigurationError, match=message) as error:
            Settings.from_env(env)
        assert next(iter(env)) in str(error.value)


def test_readme_documents_every_setting(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert markdown_table() in readme  # regenerate: python -m mlflow_hokusai.settings
    for field in dataclasses.fields(Settings):
        assert f"`{Settings.env_name(field)}`" in markdown_table()


def test_circuit_breaker_state_machine():
    from mlflow_hokusai import signals
    from mlflow_hokusai.plugins.health.breaker import CircuitBreaker

    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_seconds=10, success_threshold=2,
                             clock=clock)
    changes = []

    def on_change(sender, old, new):
        changes.append((old, new))

    signals.breaker_changed.connect(on_change)
    try:
        breaker.record_failure(), breaker.record_failure()
        breaker.record_success()  # a success resets the consecutive count
        breaker.record_failure(), breaker.record_failure()
        assert breaker.state == "closed" and breaker.allow()
        breaker.record_failure()
        assert breaker.state == "open" and not breaker.allow()
        assert breaker.retry_after() == 10
        clock.now += 9.5
        assert not breaker.allow() and breaker.retry_after() == 1
        clock.now += 1
        assert breaker.allow() and breaker.state == "half_open"  # one probe ...
        assert not breaker.allow()  # ... at a time
        breaker.record_failure()  # the probe failed: open again, timer restarted
        assert breaker.state == "open" and not breaker.allow()
        clock.now += 10
        assert breaker.allow()
        breaker.record_success()
        assert breaker.state == "half_open" and breaker.allow()
        breaker.record_success()
        assert breaker.state == "closed"
        assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"),
                           ("open", "half_open"), ("half_open", "closed")]
        breaker.record_failure(), breaker.record_failure(), breaker.record_failure()
        assert breaker.reset() == "open" and breaker.state == "closed"
        # A probe refused before reaching the backend frees the slot at once.
        breaker.record_failure(), breaker.record_failure(), breaker.record_failure()
        clock.now += 10
        assert breaker.allow() and not breaker.allow()
        breaker.release_probe()
        assert breaker.allow()
        breaker.reset()
        # Past the recovery timeout, successes alone (health checks) close it.
        breaker.record_failure(), breaker.record_failure(), breaker.record_failure()
        clock.now += 10
        breaker.record_success(), breaker.record_success()
        assert breaker.state == "closed"
    finally:
        signals.breaker_changed.disconnect(on_change)


def _request(client, forwarded=None):
    from mlflow_hokusai.pipeline import RequestInfo

    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return RequestInfo("GET", "/x", headers, "", client)


def test_client_address_believes_only_trusted_proxies():
    from mlflow_hokusai.plugins.ratelimit.addresses import ClientAddresses

    none = ClientAddresses(())
    assert none.of(_request("10.0.0.5", "1.2.3.4")) == "10.0.0.5"
    proxies = ClientAddresses(("10.0.0.0/8", "192.168.1.1"))
    assert proxies.of(_request("10.0.0.5", "1.2.3.4")) == "1.2.3.4"
    # A client cannot insert itself left of the real hop.
    assert proxies.of(_request("10.0.0.5", "6.6.6.6, 1.2.3.4, 192.168.1.1")) == "1.2.3.4"
    assert proxies.of(_request("8.8.8.8", "1.2.3.4")) == "8.8.8.8"  # untrusted peer
    assert proxies.of(_request("10.0.0.5")) == "10.0.0.5"


def test_rate_limit_policy_from_settings():
    from mlflow_hokusai.plugins.auth.gate import Principal
    from mlflow_hokusai.plugins.ratelimit.policy import Policy

    policy = Policy(Settings.from_env({}))
    standard = Principal("u", "api_key", frozenset({"read"}), tier="standard")
    assert str(policy.key_limit(standard)) == "1000 per 1 minute"
    assert str(policy.key_limit(dataclasses.replace(standard, tier="free"))) == "100 per 1 minute"
    own = dataclasses.replace(standard, rate_limit="7/hour")
    assert str(policy.key_limit(own)) == "7 per 1 hour"
    group, item = policy.route_limit("registration")
    assert group == "registration" and item.amount == 20
    group, item = policy.route_limit("dspy")
    assert group == "dspy" and str(item) == "30 per 1 minute"
    assert policy.route_limit(None) is None


@pytest.mark.parametrize("method,template,group", [
    ("POST", "/api/2.0/mlflow/model-versions/create", "registration"),
    ("POST", "/api/models/register-tokenized", "registration"),
    ("GET", "/models/contributors/<address>/impact", "contributor_impact"),
    ("GET", "/api/models/<model_name>/<version>/lineage", "lineage"),
    ("GET", "/api/2.0/mlflow/runs/get", None),
    ("POST", "/api/models/<model_id>/lineage", None),
    ("POST", "/api/v1/dspy/execute", "dspy"),
    ("POST", "/api/v1/dspy/execute/batch", "dspy"),
    ("GET", "/api/v1/dspy/programs", "dspy"),
    ("GET", "/api/v1/dspy/execution/<execution_id>", None),
])
def test_rate_limit_groups_annotate_route_templates(method, template, group):
    from mlflow_hokusai.plugins.ratelimit.policy import with_group
    from mlflow_hokusai.routes import Route

    assert with_group(Route(method, template, template, "read")).rate_group == group


def test_rate_limit_policy_refuses_bad_settings():
    from mlflow_hokusai.plugins.ratelimit.policy import Policy

    for env, message in [({"HOKUSAI_TIER_LIMITS": "free=10/minute"}, "no limit for"),
                         ({"HOKUSAI_ROUTE_LIMITS": "uploads=1/minute"}, "unknown name"),
                         ({"HOKUSAI_ROUTE_LIMITS": "lineage=lots"}, "not a limit")]:
        with pytest.raises(ConfigurationError, match=message):
            Policy(Settings.from_env(env))


def test_paths_are_judged_as_the_routers_route_them(monkeypatch):
    from mlflow_hokusai.pipeline import RequestInfo, route_path

    assert route_path("//api/keys") == "/api/keys"  # Werkzeug drops leading slashes
    scope = {"type": "http", "method": "GET", "path": "/mlflow/api/keys", "root_path": "/mlflow",
             "headers": [], "query_string": b""}
    assert RequestInfo.from_asgi(scope).path == "/api/keys"  # as Starlette strips root_path
    # Under --static-prefix MLflow's routes move, Hokusai's do not: the stronger scope wins.
    monkeypatch.setenv("_MLFLOW_STATIC_PREFIX", "/api")
    assert permissions.required_scope("GET", "/api/keys") == "admin"
    assert permissions.required_scope("POST", "/api/api/keys") == "admin"
    assert permissions.is_public("GET", "/api/static-files/app.js", {})
    assert not permissions.is_public("GET", "/api/keys", {})


def test_graphql_has_only_read_mutations():
    # The permission table lets `read` keys POST /graphql because MLflow's
    # "mutations" are searches. A real mutation in a future MLflow must fail here.
    from mlflow.server.graphql.graphql_schema_extensions import schema

    mutations = set(schema.graphql_schema.mutation_type.fields)
    assert mutations <= {"mlflowSearchDatasets", "mlflowSearchRuns", "testMutation"}, mutations


def test_jwt_audience_and_issuer_are_checked_when_configured():
    import time

    import jwt

    from mlflow_hokusai.errors import AuthenticationFailed
    from mlflow_hokusai.plugins.auth.jwt_tokens import JwtVerifier

    secret = "s" * 32
    verifier = JwtVerifier(Settings.from_env({"HOKUSAI_JWT_SECRET": secret,
                                              "HOKUSAI_JWT_AUDIENCE": "hokusai",
                                              "HOKUSAI_JWT_ISSUER": "https://idp.example"}))

    def token(**claims):
        return jwt.encode({"sub": "ci", "scope": "read write", "exp": int(time.time()) + 60,
                           "aud": "hokusai", "iss": "https://idp.example", **claims}, secret,
                          algorithm="HS256")

    assert verifier.verify(token())["scopes"] == {"read", "write"}
    for bad in (token(iss="https://evil.example"), token(aud="other"),
                jwt.encode({"sub": "ci", "aud": "hokusai", "iss": "https://idp.example"}, secret,
                           algorithm="HS256")):  # no exp
        with pytest.raises(AuthenticationFailed):
            verifier.verify(bad)


def test_the_evaluation_target_is_inferred_or_asked_for():
    from mlflow.types import ColSpec, Schema

    from mlflow_hokusai.errors import ValidationFailed
    from mlflow_hokusai.plugins.models.evaluation import infer_target

    schema = Schema([ColSpec("double", "a"), ColSpec("double", "b")])
    assert infer_target(["a", "b", "outcome"], schema) == "outcome"  # the one left out
    assert infer_target(["a", "b", "x", "label"], schema) == "label"  # two left: by name
    assert infer_target(["f", "y"], None) == "y"  # no signature: by name
    with pytest.raises(ValidationFailed) as asked:
        infer_target(["a", "b", "x", "z"], schema)
    issue = asked.value.detail[0]
    assert issue["loc"] == ["body", "target"] and "columns: a, b, x, z" in issue["msg"]


def test_an_engine_pushed_out_of_the_cache_closes_its_idle_connections(tmp_path):
    from mlflow_hokusai.db import engine as engines

    first = engines.get_engine(f"sqlite:///{tmp_path}/first.db")
    with first.connect():
        pass
    assert first.pool.checkedin() == 1  # an idle pooled connection
    assert engines.get_engine(f"sqlite:///{tmp_path}/first.db") is first
    for number in range(engines.MAX_ENGINES):
        engines.get_engine(f"sqlite:///{tmp_path}/{number}.db")
    assert first.pool.checkedin() == 0  # disposed when pushed out
    assert engines.get_engine(f"sqlite:///{tmp_path}/first.db") is not first
    with first.connect() as connection:  # a holder of it still works
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1


def test_hokusai_pools_follow_mlflows_pool_settings(monkeypatch):
    from mlflow_hokusai.db.engine import _create_engine

    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # made, never connected
    default = _create_engine(url, 3.0)
    assert (default.pool.size(), default.pool._max_overflow) == (5, 10)
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "2")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "3")
    sized = _create_engine(url, 3.0)
    assert (sized.pool.size(), sized.pool._max_overflow) == (2, 3)
