"""Hokusai's tables, on their own MetaData so MLflow's Base never sees them."""

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "hokusai_api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    # The first characters of the key: safe to show and log, useless to an attacker.
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(64), nullable=False),
    sa.Column("tier", sa.String(32), nullable=False),
    # Times are epoch milliseconds, as in MLflow's own tables.
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("rotated_from", sa.String(32), nullable=True),
    sa.Column("rate_limit", sa.String(64), nullable=True),
    sa.Column("rotated_to", sa.String(32), nullable=True),
    # MLflow workspaces (tenants) the key may enter: "a,b", "*" for all, NULL unbound.
    sa.Column("workspaces", sa.String(1000), nullable=True),
)

# --- The registry index: kept by the store plugins in the same transactions as
# MLflow's own writes (plugins/store), read by the Hokusai endpoints. Rows exist
# only for live (not deleted) model versions.
MODEL_NAME = sa.String(256)  # as MLflow's registered_models.name

registered_models = sa.Table(
    "hokusai_registered_models",
    metadata,
    sa.Column("name", MODEL_NAME, primary_key=True),
    # No longer written: owners are per workspace in hokusai_model_owners (0010
    # copied these there). Left until a migration drops them.
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("owner_key_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # The model's benchmark_direction tag: "higher" (default) or "lower".
    sa.Column("benchmark_direction", sa.String(8), nullable=True),
)

model_versions = sa.Table(
    "hokusai_model_versions",
    metadata,
    sa.Column("model_name", MODEL_NAME, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    # No longer written: versions' owners are per workspace in
    # hokusai_version_owners (0016 moved them there). Left until a migration drops them.
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("owner_key_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Lineage: the source run (its experiment and datasets are read from MLflow's
    # runs and inputs tables by primary key), and the parent version (the
    # hokusai_parent_version tag when parent_explicit, else the previous version).
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("parent_version", sa.Integer, nullable=True),
    sa.Column("parent_explicit", sa.Boolean, nullable=False, default=False),
    # token_id as the tag gave it; token_key lower-cased, for lookups.
    sa.Column("token_id", sa.String(64), nullable=True),
    sa.Column("token_key", sa.String(64), nullable=True),
    sa.Column("benchmark_metric", sa.String(250), nullable=True),
    sa.Column("benchmark_value", sa.Double, nullable=True),
    sa.Column("benchmark_direction", sa.String(8), nullable=True),
    # The contribution: a normalised (lower-case) address and when it was
    # credited (the version's creation, which a rebuild reads too). Its baseline
    # and improvement are derived when read (one indexed lookup), so a change to
    # an earlier version can never leave them stale.
    sa.Column("contributor", sa.String(42), nullable=True),
    sa.Column("contributed_at", sa.BigInteger, nullable=True),
    sa.Index("ix_hokusai_model_versions_contributor", "contributor", "contributed_at"),
)

tokens = sa.Table(
    "hokusai_tokens",
    metadata,
    sa.Column("token_key", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(64), nullable=False),
    # A token belongs to one registered model, and a model has one token.
    sa.Column("model_name", MODEL_NAME, nullable=False, unique=True),
    # No longer written (trigger set 5): the token's baseline is read from the
    # model's versions (contributions.token_baseline), so that it cannot differ
    # from what a rebuild finds. Left until a migration drops them.
    sa.Column("baseline_value", sa.Double, nullable=True),
    sa.Column("baseline_version", sa.Integer, nullable=True),
    sa.Column("bound_at", sa.BigInteger, nullable=False),
)

owners = sa.Table(
    "hokusai_owners",
    metadata,
    # "experiment" or "run" (models and versions keep theirs in their own rows).
    sa.Column("resource_type", sa.String(16), primary_key=True),
    sa.Column("resource_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("owner_key_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # What one principal owns: the searches' visibility filter (migration 0014).
    sa.Index("ix_hokusai_owners_owner", "owner", "resource_type", "resource_id"),
)

# Who created a registered model, per MLflow workspace: two workspaces' models of
# one name are two models ("default" when workspaces are off, as MLflow's own
# registered_models.workspace). Replaces the registry index's owner columns,
# which are keyed by name alone (migration 0010 moved them to "default").
model_owners = sa.Table(
    "hokusai_model_owners",
    metadata,
    sa.Column("workspace", sa.String(63), primary_key=True),
    sa.Column("name", MODEL_NAME, primary_key=True),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("owner_key_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_model_owners_owner", "owner", "workspace"),
)

# Who created a model version, per MLflow workspace (like model_owners): filled
# from MLflow's own user_id by a trigger on every version insert, whoever writes
# it, and given the principal's key id by Hokusai's store in the same
# transaction. Replaces the registry index's owner columns (migration 0016 moved
# them here, with any key id still stamped into MLflow's user_id).
version_owners = sa.Table(
    "hokusai_version_owners",
    metadata,
    sa.Column("workspace", sa.String(63), primary_key=True),
    sa.Column("name", MODEL_NAME, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("owner_key_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# A principal's permission on one experiment or registered model (plugins.auth.grants).
grants = sa.Table(
    "hokusai_grants",
    metadata,
    sa.Column("workspace", sa.String(63), primary_key=True),  # "" without workspaces
    sa.Column("resource_type", sa.String(32), primary_key=True),
    sa.Column("resource_id", sa.String(256), primary_key=True),
    sa.Column("principal", sa.String(255), primary_key=True),
    sa.Column("permission", sa.String(16), nullable=False),
    sa.Column("granted_by", sa.String(255), nullable=True),
    sa.Column("granted_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_grants_principal", "principal", "workspace", "resource_type"),
)

# --- The audit trail: one row per write request, whatever its outcome.
audit_log = sa.Table(
    "hokusai_audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("principal", sa.String(255), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("action", sa.String(300), nullable=False),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("experiment_id", sa.String(32), nullable=True),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("model_name", MODEL_NAME, nullable=True),
    sa.Column("model_version", sa.String(16), nullable=True),
    sa.Column("api_key_id", sa.String(32), nullable=True),
    # Unique: a record replayed from a spool after a crash is stored once.
    sa.Column("record_id", sa.String(32), nullable=True),
    # The caller's own X-Request-ID, if any: kept for correlation, never the
    # record's id (request_id is always the server's).
    sa.Column("client_request_id", sa.String(64), nullable=True),
    sa.Index("ix_hokusai_audit_log_time", "time", "id"),
    sa.Index("ix_hokusai_audit_log_principal", "principal", "time"),
    sa.Index("ix_hokusai_audit_log_run", "run_id"),
    sa.Index("ix_hokusai_audit_log_experiment", "experiment_id"),
    sa.Index("ix_hokusai_audit_log_model", "model_name", "model_version"),
    sa.Index("ux_hokusai_audit_log_record", "record_id", unique=True),
)

# One row per recorded inference operation (plugins.models.predictions).
predictions = sa.Table(
    "hokusai_predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("predicted_at", sa.BigInteger, nullable=False),  # epoch milliseconds
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("recorded_by", sa.String(255), nullable=True),
    sa.Index("ix_hokusai_predictions_version_time", "model_name", "model_version",
             "predicted_at"),
)

# --- Proven contributor addresses (plugins.contributors): a challenge a principal
# asked for, the links it proved by signing one, and who set each version's
# hokusai_contributor tag with what proof.
ADDRESS = sa.String(42)  # lower-case 0x + 40 hex

contributor_challenges = sa.Table(
    "hokusai_contributor_challenges",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("address", ADDRESS, nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # exactly the text to sign
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("used_at", sa.BigInteger, nullable=True),  # single use
)

contributor_links = sa.Table(
    "hokusai_contributor_links",
    metadata,
    sa.Column("principal", sa.String(255), primary_key=True),
    sa.Column("address", ADDRESS, primary_key=True),
    sa.Column("linked_at", sa.BigInteger, nullable=False),
    # The signed message and signature: anyone can check the proof again offline.
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("signature", sa.String(200), nullable=False),
    sa.Index("ix_hokusai_contributor_links_address", "address"),
)

contributor_claims = sa.Table(
    "hokusai_contributor_claims",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("model_name", MODEL_NAME, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("address", ADDRESS, nullable=False),
    sa.Column("principal", sa.String(255), nullable=True),
    # "link" (the principal proved the address), "admin", or "none" (relaxed).
    sa.Column("proof", sa.String(16), nullable=False),
    sa.Column("set_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_contributor_claims_version", "model_name", "version", "id"),
)

# --- The contribution ledger (plugins.ledger): append-only, each entry's hash
# covers its fields and the previous entry's hash.
ledger = sa.Table(
    "hokusai_ledger",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("token_id", sa.String(64), nullable=True),
    sa.Column("model_name", MODEL_NAME, nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("principal", sa.String(255), nullable=True),
    sa.Column("data", sa.Text, nullable=False),  # canonical JSON, hashed as stored
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Index("ix_hokusai_ledger_token", "token_id", "seq"),
)

# --- Registry-measured benchmarks (plugins/benchmarks, migration 0012).
# A token's benchmark: what its versions are measured on. The dataset is the
# server's own copy (``dataset_uri``), checked against ``dataset_digest`` on use.
token_benchmarks = sa.Table(
    "hokusai_token_benchmarks",
    metadata,
    sa.Column("token_key", sa.String(64), primary_key=True),  # lower-case token id
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("target_column", sa.String(256), nullable=False),
    sa.Column("source_uri", sa.String(1000), nullable=False),  # as the caller gave it
    sa.Column("dataset_uri", sa.String(1000), nullable=False),
    sa.Column("dataset_digest", sa.String(71), nullable=False),  # "sha256:<hex>"
    sa.Column("set_by", sa.String(255), nullable=True),
    sa.Column("set_at", sa.BigInteger, nullable=False),
)

# Benchmark values a version's ``benchmark_value`` tag may be verified by: one
# row per measurement by the registry (``measured``) or value set by a key with
# the ``evaluator`` scope (``evaluator``). A tag is verified while it equals the
# latest such row of its version.
verified_values = sa.Table(
    "hokusai_verified_values",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("metric", sa.String(64), nullable=True),
    sa.Column("dataset_digest", sa.String(71), nullable=True),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("mlflow_version", sa.String(32), nullable=True),
    sa.Column("principal", sa.String(255), nullable=True),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_verified_values_version", "model_name", "version", "id"),
)

# --- Model serving (plugins.serving). A deployment's processes are the
# supervisor's; these rows are what every server worker reads about them.
deployments = sa.Table(
    "hokusai_deployments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_name", MODEL_NAME, nullable=False),
    sa.Column("version", sa.Integer, nullable=True),  # pinned, or NULL with an alias
    sa.Column("alias", sa.String(256), nullable=True),
    sa.Column("resolved_version", sa.Integer, nullable=True),  # what the workers run
    sa.Column("replicas", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # starting, ready, failed
    sa.Column("reason", sa.String(1000), nullable=True),
    sa.Column("endpoints", sa.String(1000), nullable=True),  # "127.0.0.1:port,..."
    sa.Column("signature", sa.Text, nullable=True),  # JSON: the model's input columns
    sa.Column("reference_dataset", sa.String(1000), nullable=True),
    sa.Column("restarts", sa.Integer, nullable=False, default=0),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_deployments_model", "model_name"),
)

# Sampled prediction inputs (and outputs), JSON, for drift monitoring.
prediction_samples = sa.Table(
    "hokusai_prediction_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("sampled_at", sa.BigInteger, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("outputs", sa.Text, nullable=True),
    sa.Index("ix_hokusai_prediction_samples_version_time", "model_name", "model_version",
             "sampled_at"),
)

batch_jobs = sa.Table(
    "hokusai_batch_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("version", sa.String(256), nullable=True),  # number or "@alias"
    sa.Column("input_path", sa.String(1000), nullable=False),
    sa.Column("output_path", sa.String(1000), nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queued, running, succeeded, failed
    sa.Column("rows_total", sa.Integer, nullable=True),
    sa.Column("rows_done", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.String(1000), nullable=True),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_batch_jobs_model_name", "model_name"),
)

# --- DSPy executions (plugins.dspy): one row per program run, kept
# HOKUSAI_DSPY_EXECUTION_RETENTION_DAYS, readable by their caller and admins.
dspy_executions = sa.Table(
    "hokusai_dspy_executions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("batch_id", sa.String(32), nullable=True),
    sa.Column("model_name", MODEL_NAME, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON
    sa.Column("outputs", sa.Text, nullable=True),  # JSON
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("execution_time", sa.Float, nullable=False),  # seconds
    sa.Column("principal", sa.String(255), nullable=True),
    sa.Column("trace_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_hokusai_dspy_executions_created", "created_at"),
)

# Monitoring (plugins.monitoring): every served prediction request (for the
# performance report), with the ground truth posted back for it.
monitored_predictions = sa.Table(
    "hokusai_monitored_predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("model_name", MODEL_NAME, nullable=False),
    sa.Column("model_version", sa.Integer, nullable=True),
    sa.Column("predicted_at", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("error", sa.String(64), nullable=True),  # NULL: answered
    sa.Column("predictions", sa.Text, nullable=True),  # JSON list
    sa.Column("recorded_by", sa.String(255), nullable=True),
    sa.Column("truth", sa.Text, nullable=True),  # JSON list, once feedback arrived
    sa.Column("feedback_at", sa.BigInteger, nullable=True),
    sa.Column("feedback_by", sa.String(255), nullable=True),
    sa.Index("ix_hokusai_monitored_predictions_model_time", "model_name", "predicted_at"),
    sa.Index("ix_hokusai_monitored_predictions_request", "request_id"),
)

# One scheduled drift check per registered model.
drift_checks = sa.Table(
    "hokusai_drift_checks",
    metadata,
    sa.Column("model_name", MODEL_NAME, primary_key=True),
    sa.Column("version", sa.String(256), nullable=True),  # number or "@alias"
    sa.Column("interval_minutes", sa.Float, nullable=False),
    sa.Column("period_hours", sa.Float, nullable=False),
    sa.Column("features", sa.Text, nullable=True),  # JSON list
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("log_to_mlflow", sa.Boolean, nullable=False),
    sa.Column("next_run_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

drift_results = sa.Table(
    "hokusai_drift_results",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("model_name", MODEL_NAME, nullable=False),
    sa.Column("model_version", sa.Integer, nullable=True),
    sa.Column("checked_at", sa.BigInteger, nullable=False),
    sa.Column("overall_drift", sa.Boolean, nullable=True),
    sa.Column("error", sa.String(1000), nullable=True),
    sa.Column("report", sa.Text, nullable=True),  # JSON
    sa.Index("ix_hokusai_drift_results_model_time", "model_name", "checked_at"),
)
