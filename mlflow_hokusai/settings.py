"""The one settings object, read once from ``HOKUSAI_*`` environment variables.

Each field documents itself (default and description in its metadata); the
README configuration table is checked against these fields by a test, so the
documentation and the code cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from mlflow_hokusai.errors import ConfigurationError

PREFIX = "HOKUSAI_"
# Rate-limit tiers a key may carry.
TIERS = ("free", "standard", "enterprise")
# Key scopes, weakest first (plugins/auth/scopes.py says what each allows).
SCOPES = ("read", "write", "evaluator", "admin")


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def _cache_ttl(raw: str) -> float:
    value = float(raw)
    # Revocation must reach every worker within one second; this TTL is how
    # long a worker may trust a key it verified earlier, so it is capped.
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1 second")
    return value


def _public_url(raw: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or \
            parts.fragment:
        raise ValueError("expected an http(s) URL such as https://registry.example.com")
    return raw.strip().rstrip("/")


def _limit(raw: str) -> str:
    import limits

    limits.parse(raw)  # ValueError names what is wrong
    return raw


def _text_or_file(raw: str) -> str:
    # PEM keys are awkward in env vars, so "@/path/key.pem" reads a file.
    if raw.startswith("@"):
        with open(raw[1:], encoding="utf-8") as handle:
            return handle.read()
    return raw


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _permission(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("NO_PERMISSIONS", "READ", "EDIT", "MANAGE"):
        raise ValueError("must be one of NO_PERMISSIONS, READ, EDIT, MANAGE")
    return value


def _sse(raw: str) -> str:
    # S3 wants these exact spellings; accept any case.
    canonical = {"aes256": "AES256", "aws:kms": "aws:kms"}
    value = raw.strip().lower()
    if value not in canonical:
        raise ValueError("must be AES256 or aws:kms")
    return canonical[value]


def setting(default: Any, doc: str, parse: Callable[[str], Any] = str) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc, "parse": parse})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Typed, immutable Hokusai settings; build with ``Settings.from_env()``."""

    database_uri: str | None = setting(
        None, "SQLAlchemy URI of the database holding Hokusai's tables. "
        "Default: the server's backend store, when that is SQL.")
    allow_query_key: bool = setting(
        True, "Accept `?api_key=` in the query string (it can leak into proxy logs).", _bool)
    key_environment: str = setting(
        "live", "Prefix of newly created keys: `hk_live_` or `hk_test_`.", _choice("live", "test"))
    key_cache_ttl_seconds: float = setting(
        0.9, "How long a worker trusts a key it verified (0-1 s): the bound on how late "
        "a revocation or expiry is seen.", _cache_ttl)
    default_permission: str = setting(
        "READ", "Permission on an experiment or registered model for every principal but its "
        "owner (who has MANAGE) and those granted another: NO_PERMISSIONS (a private server), "
        "READ, EDIT or MANAGE.", _permission)
    gateway_scope: str = setting(
        "admin", "Scope a key needs to call MLflow's AI gateway endpoints (`POST /gateway/...`, "
        "spending the provider secrets admins stored) and the UI's deployments proxy (`POST "
        "/ajax-api/2.0/mlflow/gateway-proxy`): read, write, evaluator or admin. One scope "
        "opens every endpoint (Hokusai has no per-endpoint grant); the calls are audited "
        "whatever it is.", _choice(*SCOPES))
    last_used_interval_seconds: float = setting(
        60.0, "A key's `last_used_at` is written at most once per this interval.", _positive_float)
    default_tier: str = setting(
        "standard", "Rate-limit tier of keys created without one: free, standard or enterprise.",
        _choice(*TIERS))
    db_timeout_seconds: float = setting(
        3.0, "Connect timeout of the key store; while it is unreachable requests get 503.",
        _positive_float)
    retry_after_seconds: int = setting(5, "`Retry-After` sent with 503 answers.", _positive_int)
    jwt_secret: str | None = setting(None, "HS256 secret; enables JWT bearer tokens.")
    jwt_public_key: str | None = setting(
        None, "PEM public key (or `@/path/key.pem`) for RS256/ES256 JWT bearer tokens.",
        _text_or_file)
    jwt_algorithms: tuple[str, ...] | None = setting(
        None, "Accepted JWT algorithms. Default: HS256 with a secret, RS256,ES256 with a key.",
        _csv)
    jwt_audience: str | None = setting(None, "Required `aud` claim of JWTs, when set.")
    jwt_issuer: str | None = setting(None, "Required `iss` claim of JWTs, when set.")
    rate_limits_enabled: bool = setting(True, "Enforce rate limits at all.", _bool)
    rate_limit_storage_uri: str | None = setting(
        None, "Where limits count: unset is a file shared by the workers of this server (exact "
        "across them); `redis://host:6379/0` makes limits exact across servers too; "
        "`memory://` counts per process (each worker alone).")
    rate_limit_key_prefix: str = setting(
        "hokusai", "Prefix of the rate-limit keys in Redis.")
    rate_limit_fail_mode: str = setting(
        "open", "When the limit storage is unreachable: `open` lets requests through "
        "(`/health` says degraded), `closed` answers 503.", _choice("open", "closed"))
    tier_limits: str = setting(
        "free=100/minute,standard=1000/minute,enterprise=10000/minute",
        "Limit of each tier, per key; a key's own `rate_limit` overrides it.")
    route_limits: str = setting(
        "registration=20/minute,lineage=100/minute,contributor_impact=100/minute,"
        "evaluation=10/minute,dspy=30/minute",
        "Per-key limits of route groups, on top of the key's limit.")
    public_rate_limit: str = setting(
        "600/minute", "Limit per client address of the public routes (health, version, "
        "metrics, the UI's static files).", _limit)
    auth_failure_limit: str = setting(
        "20/minute", "Failed credentials allowed per client address before it is locked out.")
    auth_lockout_seconds: int = setting(
        300, "How long a client address stays locked out.", _positive_int)
    trusted_proxies: tuple[str, ...] = setting(
        (), "Comma-separated proxy addresses/CIDRs whose `X-Forwarded-For` is believed.", _csv)
    breaker_failure_threshold: int = setting(
        5, "Consecutive backend failures that open the circuit breaker.", _positive_int)
    breaker_recovery_seconds: float = setting(
        60.0, "How long the breaker stays open before it lets a probe through (half-open).",
        _positive_float)
    breaker_success_threshold: int = setting(
        2, "Consecutive successes in half-open state that close the breaker.", _positive_int)
    health_check_timeout_seconds: float = setting(
        3.0, "Timeout of each health check (database, stores, artifact listing).",
        _positive_float)
    health_cache_seconds: float = setting(
        1.0, "Public health routes answer from check results at most this old: one round of "
        "backend checks per worker per interval, whatever the request rate.", _positive_float)
    audit_enabled: bool = setting(
        True, "Record every write request (principal, key id, action, resources, status) in "
        "the audit trail (`GET /api/audit`).", _bool)
    audit_spool_dir: str | None = setting(
        None, "Directory of the audit spools (each worker's records, fsynced before the "
        "answer, until they are in the database); a subdirectory per database is used. Put it "
        "on persistent local storage shared by the server's workers. Default: "
        "`$TMPDIR/hokusai-audit`.")
    max_request_body_mb: float = setting(
        16.0, "Largest request body (MiB) read from any request but a streamed artifact upload; "
        "a larger one gets 413 without being read.", _positive_float)
    metrics_require_auth: bool = setting(
        False, "Put `GET /metrics` behind the `read` scope.", _bool)
    models_batch_max_operations: int = setting(
        100, "Most operations one `POST /models/batch` may carry.", _positive_int)
    evaluation_data_root: str | None = setting(
        None, "Local directory `POST /models/evaluate` may read datasets from (paths under it "
        "only). Unset: datasets must be artifact URIs (`runs:/`, `mlflow-artifacts:/`).")
    evaluation_scope: str = setting(
        "write", "Scope `POST /models/evaluate` needs (besides `EDIT` on the model); the "
        "model's code runs in the sandbox, never in the server.", _choice("write", "admin"))
    evaluation_max_dataset_mb: float = setting(
        100.0, "Largest dataset `POST /models/evaluate` reads, in MiB.", _positive_float)
    sandbox_mode: str = setting(
        "auto", "How model code is isolated when evaluated: `bwrap` (bubblewrap: no network, "
        "a read-only view of the interpreter and the job only), `process` (a child process "
        "with limits and an empty environment; no network when `unshare` works) or `auto` "
        "(`bwrap` when it works here, else `process`).", _choice("auto", "bwrap", "process"))
    sandbox_timeout_seconds: float = setting(
        120.0, "Wall-clock limit of one sandboxed evaluation (loading the model and "
        "predicting); past it the sandbox is killed and the request answered 422.",
        _positive_float)
    sandbox_memory_mb: int = setting(
        4096, "Address-space limit (`RLIMIT_AS`, MiB) of a sandboxed evaluation.", _positive_int)
    openapi_public: bool = setting(
        True, "Serve the API documentation (`/api/openapi.json`, `/docs`) without credentials, "
        "as the API reference says; `false` puts it behind the `read` scope.", _bool)
    sessions_enabled: bool = setting(
        True, "Let people log in to the browser UI at `/login` with an API key (a signed "
        "session cookie). On, the server refuses to start without a session secret.", _bool)
    session_secret: str | None = setting(
        None, "Secret signing session cookies, the same on every worker and server. Default: "
        "`$MLFLOW_FLASK_SERVER_SECRET_KEY`.")
    session_hours: float = setting(
        12.0, "Lifetime of a browser session, in hours (the key's own revocation or expiry "
        "ends it sooner).", _positive_float)
    session_same_site: str = setting(
        "lax", "`SameSite` of the session cookie: `lax` (links from other sites land logged "
        "in) or `strict`.", _choice("lax", "strict"))
    csrf_trusted_origins: tuple[str, ...] = setting(
        (), "Comma-separated origins (`https://mlflow.example.com`) that may send "
        "state-changing requests with a session or browser-held Basic credential, besides "
        "the server's own (its `Host`): for a proxy that rewrites `Host`.", _csv)
    metrics_dir: str | None = setting(
        None, "Directory for prometheus_client's multiprocess files. Default: a temp dir per "
        "server (`$PROMETHEUS_MULTIPROC_DIR` wins when set).")
    environment_name: str = setting(
        "production", "Environment name shown by `/health/status`.")
    build_date: str = setting("unknown", "Build date shown by `/version` (set by your build).")
    git_commit: str = setting("unknown", "Git commit shown by `/version` (set by your build).")
    artifacts_gc_grace_seconds: float = setting(
        3600.0, "`hokusai artifacts gc` never deletes a blob written or referenced more recently "
        "than this: the margin for uploads whose mapping is not written yet.", _positive_float)
    artifacts_s3_endpoint_url: str | None = setting(
        None, "Endpoint of an S3-compatible store for `hokusai+s3://`. Default: "
        "`$MLFLOW_S3_ENDPOINT_URL`, else AWS.")
    artifacts_s3_addressing_style: str = setting(
        "auto", "S3 addressing style: auto, path (most S3-compatible stores) or virtual.",
        _choice("auto", "path", "virtual"))
    artifacts_s3_sse: str | None = setting(
        None, "Server-side encryption of every object written: `AES256` or `aws:kms`.",
        _sse)
    artifacts_s3_sse_kms_key_id: str | None = setting(
        None, "KMS key id for `aws:kms` (default: the bucket's AWS-managed key).")
    artifacts_s3_max_attempts: int = setting(
        5, "Attempts per S3 call, with botocore's standard retry mode (exponential backoff).",
        _positive_int)
    artifacts_s3_multipart_mb: int = setting(
        8, "Size (MiB) above which uploads and copies are multipart, and of each part.",
        _positive_int)
    artifacts_s3_max_concurrency: int = setting(
        8, "Parallel part transfers of one upload or copy.", _positive_int)
    public_url: str | None = setting(
        None, "The URL people reach this server at (`https://registry.example.com`): the "
        "domain and URI every address-linking (SIWE) message names and is checked against. "
        "Unset: linking addresses is off (a `Host` header can be forged, so it is not used).",
        _public_url)
    require_proven_contributors: bool = setting(
        True, "A `hokusai_contributor` tag needs the caller's principal to hold a proven "
        "link to the address (or an `admin` key). `false`: anyone with `EDIT` may set any "
        "address, and impact and lineage mark it `address_verified: false`.", _bool)
    contributor_challenge_minutes: int = setting(
        10, "How long a link challenge (the message to sign) stays valid.", _positive_int)
    serving_enabled: bool = setting(
        True, "Run model deployments on this server (one supervisor per host and database, "
        "elected by a file lock in `HOKUSAI_SERVING_DIR`).", _bool)
    serving_dir: str | None = setting(
        None, "Directory of the deployments' model copies, logs and the supervisor's lock. "
        "Default: `$TMPDIR/hokusai-serving/<database digest>`.")
    serving_timeout_seconds: float = setting(
        30.0, "Time bound of one prediction call: past it the caller gets 504 and the model "
        "worker is restarted.", _positive_float)
    serving_memory_mb: int = setting(
        4096, "Address-space limit (RLIMIT_AS) of each model worker process, in MiB.",
        _positive_int)
    serving_max_restarts: int = setting(
        3, "Times a deployment's dead worker is restarted before it stays `failed`.", int)
    serving_start_timeout_seconds: float = setting(
        120.0, "How long a model worker may take to load its model before the deployment "
        "is `failed`.", _positive_float)
    serving_cache_seconds: float = setting(
        0.9, "How long (0-1 s; 0: not at all) a server worker remembers which ready "
        "deployment answers a model and version: the bound on how late a deleted "
        "deployment or model stops being called.", _cache_ttl)
    serving_max_replicas: int = setting(
        4, "Most worker processes one deployment may ask for.", _positive_int)
    prediction_log_sample_rate: float = setting(
        0.1, "Share (0-1) of predictions whose inputs and outputs are kept in "
        "`hokusai_prediction_samples` for drift monitoring.", _fraction)
    prediction_log_retention_days: float = setting(
        30.0, "Sampled prediction inputs older than this are deleted.", _positive_float)
    dspy_timeout_seconds: float = setting(
        60.0, "Default time bound of one DSPy program execution (a request's `timeout` may "
        "ask for less or more, up to `HOKUSAI_DSPY_MAX_TIMEOUT_SECONDS`): past it the "
        "program's process is killed and the execution answers `success: false`.",
        _positive_float)
    dspy_max_timeout_seconds: float = setting(
        300.0, "Largest `timeout` a DSPy execution request may ask for.", _positive_float)
    dspy_load_timeout_seconds: float = setting(
        120.0, "How long a DSPy program's process may take to start and load the program.",
        _positive_float)
    dspy_memory_mb: int = setting(
        4096, "Address-space limit (RLIMIT_AS, MiB) of each DSPy program process.",
        _positive_int)
    dspy_cache_size: int = setting(
        8, "Loaded DSPy programs kept per server worker (least recently used evicted; each "
        "holds up to `HOKUSAI_DSPY_BATCH_CONCURRENCY` processes).", _positive_int)
    dspy_batch_concurrency: int = setting(
        4, "Items of one DSPy batch run at the same time (each in a program process).",
        _positive_int)
    dspy_batch_max_items: int = setting(
        100, "Most items one DSPy batch request may carry.", _positive_int)
    dspy_execution_retention_days: float = setting(
        30.0, "DSPy execution records older than this are deleted.", _positive_float)
    dspy_lm: str | None = setting(
        None, "The language model DSPy programs call, as a litellm model string "
        "(`openai/gpt-4o-mini`); the program's process asks the server, which calls it with "
        "keys from the server's environment. Unset: programs use the LM they were logged "
        "with (none of the server's keys reach them).")
    dspy_lm_api_base: str | None = setting(
        None, "Base URL for `HOKUSAI_DSPY_LM` (an OpenAI-compatible server or an MLflow AI "
        "Gateway endpoint's OpenAI-compatible URL).")
    dspy_experiment: str = setting(
        "dspy-executions", "Experiment that receives the MLflow trace of each DSPy execution "
        "whose request names none.")
    monitoring_min_samples: int = setting(
        30, "Fewest values of a feature, current or reference, a drift test is run on; "
        "below it the feature is reported `insufficient_data`, never \"no drift\".",
        _positive_int)
    monitoring_max_rows: int = setting(
        50000, "Most rows a drift report reads per side: a larger window of recorded inputs "
        "is read as a pseudo-random sample of about that many rows (picked by a function of "
        "the row id, so periodic traffic cannot alias with it): memory and time stay "
        "bounded whatever the traffic.", _positive_int)
    monitoring_experiment: str = setting(
        "hokusai-monitoring", "MLflow experiment scheduled drift checks log their reports to "
        "(as runs) when a check asks for it.")
    log_level: str = setting(
        "info", "Level of the `mlflow_hokusai` loggers.",
        _choice("debug", "info", "warning", "error"))

    @staticmethod
    def env_name(field: dataclasses.Field) -> str:
        return PREFIX + field.name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(cls.env_name(field), "")
            if raw == "":
                continue
            try:
                values[field.name] = field.metadata["parse"](raw)
            except (ValueError, OSError) as exc:
                raise ConfigurationError(f"{cls.env_name(field)}: {exc}") from None
        return cls(**values)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


def markdown_table() -> str:
    """The README's configuration table (``python -m mlflow_hokusai.settings``)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field in dataclasses.fields(Settings):
        default = field.default
        text = str(default).lower() if isinstance(default, bool) else default
        shown = "(unset)" if default is None else f"`{text}`"
        rows.append(f"| `{Settings.env_name(field)}` | {shown} | {field.metadata['doc']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
