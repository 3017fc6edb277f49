"""Model versions' owners move out of MLflow's rows (issue 21): up to trigger
set 5 a version's creator travelled as "name<0x1f>key id" in MLflow's
model_versions.user_id, which a deferred trigger split into the registry index.
Owners and key ids now live in hokusai_version_owners, per workspace, and
MLflow's user_id keeps the plain principal name. This copies what the index
recorded, takes any key id still stamped into user_id (the trigger was missing:
a restore, a manual migration) and leaves user_id with the name alone.

Revision ID: 0016_owner_out_of_mlflow_rows
Revises: 0013_serving
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_owner_out_of_mlflow_rows"
down_revision = "0015_dspy"
branch_labels = None
depends_on = None

# Frozen here as they were when this ran (the live names are in mlflow_compat).
_SEPARATOR = "\x1f"
_MLFLOW_VERSIONS = sa.table("model_versions", sa.column("workspace"), sa.column("name"),
                            sa.column("version"), sa.column("user_id"),
                            sa.column("creation_time"))
_INDEX = sa.table("hokusai_model_versions", sa.column("model_name"), sa.column("version"),
                  sa.column("owner"), sa.column("owner_key_id"))


def upgrade():
    owners = op.create_table(
        "hokusai_version_owners",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("owner_key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("model_versions"):
        return  # Hokusai's tables made before MLflow's: nothing recorded yet
    V, IX = _MLFLOW_VERSIONS, _INDEX
    rows = bind.execute(
        sa.select(V.c.workspace, V.c.name, V.c.version, V.c.user_id, V.c.creation_time,
                  IX.c.owner, IX.c.owner_key_id)
        .select_from(V.outerjoin(IX, sa.and_(IX.c.model_name == V.c.name,
                                             IX.c.version == V.c.version)))).all()
    moved, stamped = [], []
    for row in rows:
        name, _, key_id = (row.user_id or "").partition(_SEPARATOR)
        if key_id:
            stamped.append({"w": row.workspace, "n": row.name, "v": row.version, "u": name})
        moved.append({"workspace": row.workspace, "name": row.name, "version": row.version,
                      "owner": row.owner or name or None,
                      "owner_key_id": key_id or row.owner_key_id,
                      "created_at": row.creation_time or 0})
    if moved:
        bind.execute(owners.insert(), moved)
    if stamped:
        bind.execute(V.update().where(V.c.workspace == sa.bindparam("w"),
                                      V.c.name == sa.bindparam("n"),
                                      V.c.version == sa.bindparam("v"))
                     .values(user_id=sa.bindparam("u")), stamped)
    bind.execute(IX.update().values(owner=None, owner_key_id=None))


def downgrade():
    # The stamps are not put back: MLflow's rows keep the plain names.
    op.drop_table("hokusai_version_owners")
