"""An explicit rate limit per API key (e.g. "500/minute"), overriding its tier's.

Revision ID: 0002_key_rate_limit
Revises: 0001_api_keys
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_key_rate_limit"
down_revision = "0001_api_keys"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("hokusai_api_keys") as batch:
        batch.add_column(sa.Column("rate_limit", sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table("hokusai_api_keys") as batch:
        batch.drop_column("rate_limit")
