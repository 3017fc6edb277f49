"""The successor of a rotated key: a key can be rotated once, even when two
rotations race.

Revision ID: 0003_key_rotated_to
Revises: 0002_key_rate_limit
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_key_rotated_to"
down_revision = "0002_key_rate_limit"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("hokusai_api_keys") as batch:
        batch.add_column(sa.Column("rotated_to", sa.String(32), nullable=True))


def downgrade():
    with op.batch_alter_table("hokusai_api_keys") as batch:
        batch.drop_column("rotated_to")
