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
