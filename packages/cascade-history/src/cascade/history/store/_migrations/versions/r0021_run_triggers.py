"""The trigger that started a run, the event it started on and the run it followed, where a
trigger started it (``runs.trigger``, ``runs.trigger_event``, ``runs.followed_run``: its
``ENGINE_STARTED``'s ``origin.trigger``, ``origin.trigger_event`` and ``origin.followed_run``,
docs/triggers.md), so that a trigger's runs are found by its name and a run's page says what
started it.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision: str | None = "0020"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Runs recorded before name no trigger (their ``request_id`` may: ``trig-NAME-KEY``)."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trigger", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("trigger_event", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("followed_run", sa.String(length=1024), nullable=True))
    op.create_index(
        op.f("ix_runs_trigger_started_at"), "runs", ["trigger", "started_at"], unique=False
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_runs_trigger_started_at"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("followed_run")
        batch.drop_column("trigger_event")
        batch.drop_column("trigger")
