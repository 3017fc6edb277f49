"""Drop the two indexes on hokusai_model_versions that only the index upkeep
used (token_key, and model_name + parent_version): the triggers that keep the
index now reach those rows through the primary key's model_name prefix, on rare
paths (binding or releasing a token, deleting a version), and every version
insert is spared two index writes. The old parent index also misled
PostgreSQL, planning the triggers' statements before it had statistics, into
scanning a model's versions for lookups by (model_name, version).

Revision ID: 0006_trigger_indexes
Revises: 0005_predictions
"""
from alembic import op

revision = "0006_trigger_indexes"
down_revision = "0005_predictions"
branch_labels = None
depends_on = None

TABLE = "hokusai_model_versions"
INDEXES = {"ix_hokusai_model_versions_token_key": ["token_key"],
           "ix_hokusai_model_versions_parent": ["model_name", "parent_version"]}


def upgrade():
    for name in INDEXES:
        op.drop_index(name, TABLE)


def downgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, TABLE, columns)
