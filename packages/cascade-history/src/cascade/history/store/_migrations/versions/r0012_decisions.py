"""Decisions on held tasks: the engines' answers (``decisions``) and the decision a task event
came of (``task_events.decided``).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Events recorded before came of no decision; no decision was recorded."""
    with op.batch_alter_table("task_events") as batch:
        batch.add_column(sa.Column("decided", sa.JSON(), nullable=True))
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=1024), nullable=True),
        sa.Column("task_name", sa.String(length=1024), nullable=True),
        sa.Column("attempt", sa.BigInteger(), nullable=True),
        sa.Column("decided", sa.JSON(), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("issued_by", sa.String(length=256), nullable=True),
        sa.Column("issued_at", sa.Double(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("request_id", name=op.f("uq_decisions_request_id")),
    )
    op.create_index(op.f("ix_decisions_at"), "decisions", ["at"], unique=False)
    op.create_index(op.f("ix_decisions_run_id"), "decisions", ["run_id"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_decisions_run_id"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_at"), table_name="decisions")
    op.drop_table("decisions")
    with op.batch_alter_table("task_events") as batch:
        batch.drop_column("decided")
