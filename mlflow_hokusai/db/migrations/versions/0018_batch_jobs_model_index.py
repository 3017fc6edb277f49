"""Index batch jobs by model: a registered model's rename or delete moves or
deletes its jobs inside MLflow's write transaction (db/model_rows.py), which
without it read the whole table while holding MLflow's locks.

Revision ID: 0018_batch_jobs_model_index
Revises: 0017_permission_indexes
"""
from alembic import op

revision = "0018_batch_jobs_model_index"
down_revision = "0017_permission_indexes"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_hokusai_batch_jobs_model_name", "hokusai_batch_jobs", ["model_name"])


def downgrade():
    op.drop_index("ix_hokusai_batch_jobs_model_name", table_name="hokusai_batch_jobs")
