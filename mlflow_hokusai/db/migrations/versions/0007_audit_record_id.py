"""Give each audit record a unique id of its own: records reach the database
from each worker's durable spool at least once (a replay after a crash may send
a record the database already holds), and the unique index makes the second
insert a no-op.

Revision ID: 0007_audit_record_id
Revises: 0006_trigger_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_audit_record_id"
down_revision = "0006_trigger_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("hokusai_audit_log") as table:
        table.add_column(sa.Column("record_id", sa.String(32), nullable=True))
    op.create_index("ux_hokusai_audit_log_record", "hokusai_audit_log", ["record_id"],
                    unique=True)


def downgrade():
    op.drop_index("ux_hokusai_audit_log_record", "hokusai_audit_log")
    with op.batch_alter_table("hokusai_audit_log") as table:
        table.drop_column("record_id")
