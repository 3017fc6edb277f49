"""Model serving (issue 17): deployments of registry versions, sampled
prediction inputs for drift monitoring, and batch prediction jobs.

Revision ID: 0013_serving
Revises: 0009_key_workspaces
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_serving"
down_revision = "0012_benchmarks"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "hokusai_deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("alias", sa.String(256), nullable=True),
        sa.Column("resolved_version", sa.Integer, nullable=True),
        sa.Column("replicas", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("endpoints", sa.String(1000), nullable=True),
        sa.Column("signature", sa.Text, nullable=True),
        sa.Column("reference_dataset", sa.String(1000), nullable=True),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hokusai_deployments_model", "hokusai_deployments", ["model_name"])
    op.create_table(
        "hokusai_prediction_samples",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("sampled_at", sa.BigInteger, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=True),
    )
    op.create_index("ix_hokusai_prediction_samples_version_time", "hokusai_prediction_samples",
                    ["model_name", "model_version", "sampled_at"])
    op.create_table(
        "hokusai_batch_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=True),
        sa.Column("input_path", sa.String(1000), nullable=False),
        sa.Column("output_path", sa.String(1000), nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows_total", sa.Integer, nullable=True),
        sa.Column("rows_done", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade():
    op.drop_table("hokusai_batch_jobs")
    op.drop_table("hokusai_prediction_samples")
    op.drop_table("hokusai_deployments")
