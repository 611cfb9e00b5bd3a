"""The schedule and the slot a run fills, where a schedule started it (``runs.schedule``,
``runs.scheduled_for``: its ``ENGINE_STARTED``'s ``origin.schedule`` and
``origin.scheduled_for``, the slot as ISO text in UTC), so that a schedule's runs are found by
its name.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Runs recorded before name no schedule (their ``request_id`` may: ``sched-NAME-SLOT``)."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("schedule", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("scheduled_for", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_runs_schedule_started_at"), "runs", ["schedule", "started_at"], unique=False
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_runs_schedule_started_at"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("scheduled_for")
        batch.drop_column("schedule")
