"""Audit records keep a client's X-Request-ID apart from the server's own id;
registered-model owners are keyed by (workspace, name), the existing ones
(recorded by name alone) moved into MLflow's "default" workspace (issue 13).

Revision ID: 0010_request_ids_model_owners
Revises: 0009_key_workspaces
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_request_ids_model_owners"
down_revision = "0009_key_workspaces"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("hokusai_audit_log") as table:
        table.add_column(sa.Column("client_request_id", sa.String(64), nullable=True))
    op.create_table(
        "hokusai_model_owners",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("owner_key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hokusai_model_owners_owner", "hokusai_model_owners",
                    ["owner", "workspace"])
    op.execute("INSERT INTO hokusai_model_owners (workspace, name, owner, owner_key_id, "
               "created_at) SELECT 'default', name, owner, owner_key_id, created_at "
               "FROM hokusai_registered_models "
               "WHERE owner IS NOT NULL OR owner_key_id IS NOT NULL")


def downgrade():
    op.drop_index("ix_hokusai_model_owners_owner", "hokusai_model_owners")
    op.drop_table("hokusai_model_owners")
    with op.batch_alter_table("hokusai_audit_log") as table:
        table.drop_column("client_request_id")
