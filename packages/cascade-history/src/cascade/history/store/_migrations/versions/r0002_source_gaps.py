"""What recorders found missing of each source's numbered events: the ``source_gaps`` table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``source_gaps``; nothing of revision 0001 changes."""
    op.create_table(
        "source_gaps",
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("recorder", sa.String(length=1024), nullable=False),
        sa.Column("missed", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.Double(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("source", "recorder", name=op.f("pk_source_gaps")),
    )
    op.create_index(op.f("ix_source_gaps_last_at"), "source_gaps", ["last_at"], unique=False)


def downgrade() -> None:
    """Drop ``source_gaps``."""
    op.drop_index(op.f("ix_source_gaps_last_at"), table_name="source_gaps")
    op.drop_table("source_gaps")
