"""API keys.

Revision ID: 0001_api_keys
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001_api_keys"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hokusai_api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("rotated_from", sa.String(32), nullable=True),
    )
    op.create_index("ix_hokusai_api_keys_key_hash", "hokusai_api_keys", ["key_hash"], unique=True)


def downgrade():
    op.drop_table("hokusai_api_keys")
