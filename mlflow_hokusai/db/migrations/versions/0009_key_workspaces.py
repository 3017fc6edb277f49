"""The MLflow workspaces (tenants) a key is bound to: a comma-separated list,
"*" for all, NULL for none given (issue 13).

Revision ID: 0009_key_workspaces
Revises: 0008_grants
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_key_workspaces"
down_revision = "0008_grants"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("hokusai_api_keys") as batch:
        batch.add_column(sa.Column("workspaces", sa.String(1000), nullable=True))


def downgrade():
    with op.batch_alter_table("hokusai_api_keys") as batch:
        batch.drop_column("workspaces")
