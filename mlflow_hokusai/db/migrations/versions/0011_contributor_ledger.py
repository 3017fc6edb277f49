"""Proven contributor addresses and the contribution ledger (issue 16): SIWE
challenges, the links principals proved, who set each version's contributor
with what proof, and the hash-chained ledger.

Revision ID: 0011_contributor_ledger
Revises: 0009_key_workspaces
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_contributor_ledger"
down_revision = "0010_request_ids_model_owners"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "hokusai_contributor_challenges",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True))
    op.create_table(
        "hokusai_contributor_links",
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("linked_at", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("signature", sa.String(200), nullable=False))
    op.create_index("ix_hokusai_contributor_links_address", "hokusai_contributor_links",
                    ["address"])
    op.create_table(
        "hokusai_contributor_claims",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("principal", sa.String(255), nullable=True),
        sa.Column("proof", sa.String(16), nullable=False),
        sa.Column("set_at", sa.BigInteger, nullable=False))
    op.create_index("ix_hokusai_contributor_claims_version", "hokusai_contributor_claims",
                    ["model_name", "version", "id"])
    op.create_table(
        "hokusai_ledger",
        sa.Column("seq", _ID, primary_key=True, autoincrement=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("token_id", sa.String(64), nullable=True),
        sa.Column("model_name", sa.String(256), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("principal", sa.String(255), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True))
    op.create_index("ix_hokusai_ledger_token", "hokusai_ledger", ["token_id", "seq"])


def downgrade():
    for table in ("hokusai_ledger", "hokusai_contributor_claims", "hokusai_contributor_links",
                  "hokusai_contributor_challenges"):
        op.drop_table(table)
