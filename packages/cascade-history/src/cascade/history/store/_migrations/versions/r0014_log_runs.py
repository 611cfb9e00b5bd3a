"""Per run, the log batches stored and the highest batch number stored (``log_runs``): the
numbers below it the history lacks are batches lost on the way (or sent before a recorder
listened), whichever tasks' lines they held.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """The runs logged before are counted from the batches still stored, those numbered below
    the lowest stored taken as stored (``--keep-logs`` deletes the oldest, and no count of
    them was kept: a lost one is not told from a deleted one there)."""
    op.create_table(
        "log_runs",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("batches", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_log_runs")),
    )
    op.create_index(op.f("ix_log_runs_last_at"), "log_runs", ["last_at"], unique=False)
    op.execute(
        "INSERT INTO log_runs (run_id, batches, last_seq, last_at)"
        " SELECT run_id, COUNT(*) + MIN(seq) - 1, MAX(seq), MAX(received_at) FROM log_batches"
        " GROUP BY run_id"
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index(op.f("ix_log_runs_last_at"), table_name="log_runs")
    op.drop_table("log_runs")
