"""The registry index (tokens, benchmarks, contributions, lineage, owners) and
the audit trail. The store plugins fill the index from MLflow's tables on first
start (plugins/store/backfill.py), so an existing MLflow database is indexed too.

Revision ID: 0004_registry_index
Revises: 0003_key_rotated_to
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_registry_index"
down_revision = "0003_key_rotated_to"
branch_labels = None
depends_on = None

NAME = sa.String(256)


def upgrade():
    op.create_table(
        "hokusai_registered_models",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("owner", sa.String(255)),
        sa.Column("owner_key_id", sa.String(32)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("benchmark_direction", sa.String(8)),
    )
    op.create_table(
        "hokusai_model_versions",
        sa.Column("model_name", NAME, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("owner_key_id", sa.String(32)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("parent_version", sa.Integer),
        sa.Column("parent_explicit", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("token_id", sa.String(64)),
        sa.Column("token_key", sa.String(64)),
        sa.Column("benchmark_metric", sa.String(250)),
        sa.Column("benchmark_value", sa.Double),
        sa.Column("benchmark_direction", sa.String(8)),
        sa.Column("contributor", sa.String(42)),
        sa.Column("contributed_at", sa.BigInteger),
    )
    op.create_index("ix_hokusai_model_versions_token_key", "hokusai_model_versions",
                    ["token_key"])
    op.create_index("ix_hokusai_model_versions_contributor", "hokusai_model_versions",
                    ["contributor", "contributed_at"])
    op.create_index("ix_hokusai_model_versions_parent", "hokusai_model_versions",
                    ["model_name", "parent_version"])
    op.create_table(
        "hokusai_tokens",
        sa.Column("token_key", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("model_name", NAME, nullable=False, unique=True),
        sa.Column("baseline_value", sa.Double),
        sa.Column("baseline_version", sa.Integer),
        sa.Column("bound_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hokusai_owners",
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(255)),
        sa.Column("owner_key_id", sa.String(32)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hokusai_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(255)),
        sa.Column("key_id", sa.String(32)),
        sa.Column("action", sa.String(300), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("experiment_id", sa.String(32)),
        sa.Column("run_id", sa.String(32)),
        sa.Column("model_name", NAME),
        sa.Column("model_version", sa.String(16)),
        sa.Column("api_key_id", sa.String(32)),
    )
    for name, columns in (("time", ["time", "id"]), ("principal", ["principal", "time"]),
                          ("run", ["run_id"]), ("experiment", ["experiment_id"]),
                          ("model", ["model_name", "model_version"])):
        op.create_index(f"ix_hokusai_audit_log_{name}", "hokusai_audit_log", columns)


def downgrade():
    for table in ("hokusai_audit_log", "hokusai_owners", "hokusai_tokens",
                  "hokusai_model_versions", "hokusai_registered_models"):
        op.drop_table(table)
