"""Monitoring served models (issue 18): every prediction request with its
ground truth, scheduled drift checks and their results.

Revision ID: 0014_monitoring
Revises: 0013_serving
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_monitoring"
down_revision = "0013_serving"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "hokusai_monitored_predictions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("predicted_at", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("predictions", sa.Text, nullable=True),
        sa.Column("recorded_by", sa.String(255), nullable=True),
        sa.Column("truth", sa.Text, nullable=True),
        sa.Column("feedback_at", sa.BigInteger, nullable=True),
        sa.Column("feedback_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_hokusai_monitored_predictions_model_time",
                    "hokusai_monitored_predictions", ["model_name", "predicted_at"])
    op.create_index("ix_hokusai_monitored_predictions_request",
                    "hokusai_monitored_predictions", ["request_id"])
    op.create_table(
        "hokusai_drift_checks",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("version", sa.String(256), nullable=True),
        sa.Column("interval_minutes", sa.Float, nullable=False),
        sa.Column("period_hours", sa.Float, nullable=False),
        sa.Column("features", sa.Text, nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("log_to_mlflow", sa.Boolean, nullable=False),
        sa.Column("next_run_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hokusai_drift_results",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("checked_at", sa.BigInteger, nullable=False),
        sa.Column("overall_drift", sa.Boolean, nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("report", sa.Text, nullable=True),
    )
    op.create_index("ix_hokusai_drift_results_model_time", "hokusai_drift_results",
                    ["model_name", "checked_at"])


def downgrade():
    op.drop_table("hokusai_drift_results")
    op.drop_table("hokusai_drift_checks")
    op.drop_table("hokusai_monitored_predictions")
