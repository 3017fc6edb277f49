"""Registry-measured benchmarks (issue 16): a token's benchmark spec and the
verified values of its versions.

Revision ID: 0012_benchmarks
Revises: 0009_key_workspaces
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_benchmarks"
down_revision = "0011_contributor_ledger"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hokusai_token_benchmarks",
        sa.Column("token_key", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("target_column", sa.String(256), nullable=False),
        sa.Column("source_uri", sa.String(1000), nullable=False),
        sa.Column("dataset_uri", sa.String(1000), nullable=False),
        sa.Column("dataset_digest", sa.String(71), nullable=False),
        sa.Column("set_by", sa.String(255), nullable=True),
        sa.Column("set_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hokusai_verified_values",
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
    )
    op.create_index("ix_hokusai_verified_values_version", "hokusai_verified_values",
                    ["model_name", "version", "id"])


def downgrade():
    op.drop_table("hokusai_verified_values")
    op.drop_table("hokusai_token_benchmarks")
