"""What each recorder says of itself as it records (``recorder_notes``): whether it keeps up
with the broker, noted every few seconds, so that the dashboard's header says a recorder that
falls behind while it happens, not only in the runs' missing counts afterwards (issue 91).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision: str | None = "0021"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """No recorder has noted anything yet."""
    op.create_table(
        "recorder_notes",
        sa.Column("recorder", sa.String(length=1024), nullable=False),
        sa.Column("noted_at", sa.Double(), nullable=False),
        sa.Column("behind_since", sa.Double(), nullable=True),
        sa.Column("queued", sa.BigInteger(), nullable=False),
        sa.Column("lag", sa.Double(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("shed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("recorder", name=op.f("pk_recorder_notes")),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("recorder_notes")
