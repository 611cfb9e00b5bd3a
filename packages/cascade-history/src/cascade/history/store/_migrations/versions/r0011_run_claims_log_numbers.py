"""What vouches for each run's source (``runs.vouched``), the claims of the sources not believed
(``run_claims``), each task's highest log line number stored (``log_tasks.last_n``), and a
failed attempt's traceback (``task_events.traceback``).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Runs recorded before keep their source with nothing said to vouch for it; their tasks'
    line numbers are taken from the lines still stored; their failures have no traceback."""
    with op.batch_alter_table("task_events") as batch:
        batch.add_column(sa.Column("traceback", sa.Text(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("vouched", sa.String(length=16), nullable=True))
    op.create_table(
        "run_claims",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("set_aside", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "source", name=op.f("pk_run_claims")),
    )
    with op.batch_alter_table("log_tasks") as batch:
        batch.add_column(sa.Column("last_n", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE log_tasks SET last_n = COALESCE((SELECT MAX(n) FROM log_lines"
        " WHERE log_lines.run_id = log_tasks.run_id AND log_lines.task_id = log_tasks.task_id),"
        " 0)"
    )


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("log_tasks") as batch:
        batch.drop_column("last_n")
    op.drop_table("run_claims")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("vouched")
    with op.batch_alter_table("task_events") as batch:
        batch.drop_column("traceback")
