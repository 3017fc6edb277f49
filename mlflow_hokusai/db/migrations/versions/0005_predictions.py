"""Recorded inference operations (``POST /models/{name}/{version}/predictions``).

Revision ID: 0005_predictions
Revises: 0004_registry_index
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_predictions"
down_revision = "0004_registry_index"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hokusai_predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("predicted_at", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("recorded_by", sa.String(255), nullable=True),
    )
    # Every read is one version's records over a time range.
    op.create_index("ix_hokusai_predictions_version_time", "hokusai_predictions",
                    ["model_name", "model_version", "predicted_at"])


def downgrade():
    op.drop_table("hokusai_predictions")
