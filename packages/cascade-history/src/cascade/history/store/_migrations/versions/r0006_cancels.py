"""Runs cancelled, as their engines answered (``cancels``): the audit's ``cancelled`` rows.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``cancels``; cancels answered before it were never recorded."""
    op.create_table(
        "cancels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("cancelled", sa.JSON(), nullable=False),
        sa.Column("cancelled_count", sa.BigInteger(), nullable=False),
        sa.Column("abandoned", sa.JSON(), nullable=False),
        sa.Column("abandoned_count", sa.BigInteger(), nullable=False),
        sa.Column("not_started", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("issued_by", sa.String(length=256), nullable=True),
        sa.Column("issued_at", sa.Double(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cancels")),
        sa.UniqueConstraint("request_id", name=op.f("uq_cancels_request_id")),
    )
    op.create_index(op.f("ix_cancels_at"), "cancels", ["at"])
    op.create_index(op.f("ix_cancels_run_id"), "cancels", ["run_id"])


def downgrade() -> None:
    """Drop ``cancels``."""
    op.drop_index(op.f("ix_cancels_run_id"), table_name="cancels")
    op.drop_index(op.f("ix_cancels_at"), table_name="cancels")
    op.drop_table("cancels")
