"""Refusals counted per run (``run_refusals``), and when runs were received (``runs.received_at``,
``runs.last_received_at``): what retention and periods go by.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``run_refusals``, and the runs' receive times: a run recorded before them is taken
    to have been received when its messages say (``started_at``, ``last_ts``)."""
    op.create_table(
        "run_refusals",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "reason", name=op.f("pk_run_refusals")),
    )
    op.create_index(op.f("ix_run_refusals_last_at"), "run_refusals", ["last_at"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("received_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("last_received_at", sa.Double(), nullable=True))
    # nullable, as SQLite adds a column NOT NULL only with a default (or by copying the table)
    op.execute("UPDATE runs SET received_at = started_at, last_received_at = last_ts")
    op.create_index(op.f("ix_runs_received_at"), "runs", ["received_at"])
    op.create_index(op.f("ix_runs_last_received_at"), "runs", ["last_received_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_runs_last_received_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_received_at"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("last_received_at")
        batch.drop_column("received_at")
    op.drop_index(op.f("ix_run_refusals_last_at"), table_name="run_refusals")
    op.drop_table("run_refusals")
