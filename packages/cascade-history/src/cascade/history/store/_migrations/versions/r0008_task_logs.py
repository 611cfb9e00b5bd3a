"""What the runs' tasks logged: ``log_lines``, ``log_batches`` and ``log_tasks``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    """Create the log tables; nothing was logged into the history before them."""
    op.create_table(
        "log_lines",
        sa.Column("id", _ID, nullable=False),
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("task_id", sa.String(length=1024), nullable=False),
        sa.Column("task_name", sa.String(length=1024), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("level_number", sa.Integer(), nullable=False),
        sa.Column("logger", sa.String(length=1024), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stream", sa.String(length=8), nullable=True),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_lines")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_log_lines_run_id_id"), "log_lines", ["run_id", "id"])
    op.create_index(
        op.f("ix_log_lines_run_id_task_id_id"), "log_lines", ["run_id", "task_id", "id"]
    )
    op.create_index(op.f("ix_log_lines_received_at"), "log_lines", ["received_at"])
    op.create_table(
        "log_batches",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_log_batches")),
    )
    op.create_index(op.f("ix_log_batches_received_at"), "log_batches", ["received_at"])
    op.create_table(
        "log_tasks",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("task_id", sa.String(length=1024), nullable=False),
        sa.Column("task_name", sa.String(length=1024), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("dropped_rate", sa.BigInteger(), nullable=False),
        sa.Column("dropped_budget", sa.BigInteger(), nullable=False),
        sa.Column("dropped_queue", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "task_id", name=op.f("pk_log_tasks")),
    )
    op.create_index(op.f("ix_log_tasks_last_at"), "log_tasks", ["last_at"])


def downgrade() -> None:
    """Drop them, and what they held."""
    op.drop_index(op.f("ix_log_tasks_last_at"), table_name="log_tasks")
    op.drop_table("log_tasks")
    op.drop_index(op.f("ix_log_batches_received_at"), table_name="log_batches")
    op.drop_table("log_batches")
    op.drop_index(op.f("ix_log_lines_received_at"), table_name="log_lines")
    op.drop_index(op.f("ix_log_lines_run_id_task_id_id"), table_name="log_lines")
    op.drop_index(op.f("ix_log_lines_run_id_id"), table_name="log_lines")
    op.drop_table("log_lines")
