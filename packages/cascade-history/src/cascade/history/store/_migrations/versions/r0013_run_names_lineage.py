"""A run's name and where it came from (``runs.name``, ``workflow``, ``params``, ``rerun_of``,
``root_run``, and the request that started it: ``request_id``, ``issued_by``, ``reason``,
``issued_at``), and the run a reused task's result came from (``task_events.reused_from``).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Runs recorded before have no name nor origin; their tasks reused nothing."""
    with op.batch_alter_table("task_events") as batch:
        batch.add_column(sa.Column("reused_from", sa.String(length=1024), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("name", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("workflow", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("params", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rerun_of", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("root_run", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("issued_by", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("issued_at", sa.Double(), nullable=True))
    op.create_index(op.f("ix_runs_name_started_at"), "runs", ["name", "started_at"], unique=False)
    op.create_index(op.f("ix_runs_rerun_of"), "runs", ["rerun_of"], unique=False)
    op.create_index(op.f("ix_runs_root_run"), "runs", ["root_run"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_runs_root_run"), table_name="runs")
    op.drop_index(op.f("ix_runs_rerun_of"), table_name="runs")
    op.drop_index(op.f("ix_runs_name_started_at"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for column in (
            "issued_at",
            "reason",
            "issued_by",
            "request_id",
            "root_run",
            "rerun_of",
            "params",
            "workflow",
            "name",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("task_events") as batch:
        batch.drop_column("reused_from")
