"""A run's graph of tasks as its ``ENGINE_STARTED`` sent it (``run_graphs``).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision: str | None = "0018"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """The runs recorded before have none: their engines' starts were stored without it."""
    op.create_table(
        "run_graphs",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("graph", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_graphs")),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("run_graphs")
