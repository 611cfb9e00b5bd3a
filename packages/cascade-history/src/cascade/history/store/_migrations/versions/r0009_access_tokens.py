"""The dashboard's access audit (``access_events``), per-person API tokens (``api_tokens``)
and the broker logins' witness notes (``issued_notes``).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    """Create both tables; nothing was audited nor any token made before them."""
    op.create_table(
        "access_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("who", sa.String(length=256), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_events")),
    )
    op.create_index(op.f("ix_access_events_at"), "access_events", ["at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", _ID, nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("last_used_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_tokens_secret_hash")),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "issued_notes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("login", sa.String(length=1024), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.Double(), nullable=True),
        sa.Column("issued_by", sa.String(length=256), nullable=True),
        sa.Column("ref_id", sa.String(length=256), nullable=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_notes")),
    )
    op.create_index(op.f("ix_issued_notes_at"), "issued_notes", ["at"])


def downgrade() -> None:
    """Drop them, and what they held (every API token stops working)."""
    op.drop_index(op.f("ix_issued_notes_at"), table_name="issued_notes")
    op.drop_table("issued_notes")
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_access_events_at"), table_name="access_events")
    op.drop_table("access_events")
