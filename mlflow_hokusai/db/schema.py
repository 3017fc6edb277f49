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
    # credited (the version's creation, which a rebuild reads too). Its baseline and improvement are derived when read (one indexed
    # lookup), so a change to an earlier version can never leave them stale.
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
