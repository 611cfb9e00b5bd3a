"""Who set a constraint and why (``constraint_events.reason``, ``issued_by``, ``issued_at``),
and what held a blocked task back (``task_events.held_by``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Four nullable columns: rows stored before have none of them (their messages had none)."""
    with op.batch_alter_table("constraint_events") as table:
        table.add_column(sa.Column("reason", sa.Text(), nullable=True))
        table.add_column(sa.Column("issued_by", sa.String(length=256), nullable=True))
        table.add_column(sa.Column("issued_at", sa.Double(), nullable=True))
    with op.batch_alter_table("task_events") as table:
        table.add_column(sa.Column("held_by", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop the four columns."""
    with op.batch_alter_table("task_events") as table:
        table.drop_column("held_by")
    with op.batch_alter_table("constraint_events") as table:
        table.drop_column("issued_at")
        table.drop_column("issued_by")
        table.drop_column("reason")
