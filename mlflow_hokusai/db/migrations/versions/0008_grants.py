"""Per-resource permission grants (issue 13): a principal's permission on one
experiment or registered model, per workspace ("" when workspaces are off).

Revision ID: 0008_grants
Revises: 0007_audit_record_id
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_grants"
down_revision = "0007_audit_record_id"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hokusai_grants",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("resource_type", sa.String(32), primary_key=True),
        sa.Column("resource_id", sa.String(256), primary_key=True),
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.String(255), nullable=True),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
    )
    # Listing what one principal may read (search filtering, `permissions list`).
    op.create_index("ix_hokusai_grants_principal", "hokusai_grants",
                    ["principal", "workspace", "resource_type"])


def downgrade():
    op.drop_table("hokusai_grants")
