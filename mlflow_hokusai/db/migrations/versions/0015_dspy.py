"""DSPy program executions (issue 19): one record per run of a registered
DSPy program, for ``GET /api/v1/dspy/execution/{id}`` and the statistics.

Revision ID: 0015_dspy
Revises: 0013_serving
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_dspy"
down_revision = "0014_monitoring"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hokusai_dspy_executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("batch_id", sa.String(32), nullable=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("execution_time", sa.Float, nullable=False),
        sa.Column("principal", sa.String(255), nullable=True),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hokusai_dspy_executions_created", "hokusai_dspy_executions",
                    ["created_at"])


def downgrade():
    op.drop_table("hokusai_dspy_executions")
