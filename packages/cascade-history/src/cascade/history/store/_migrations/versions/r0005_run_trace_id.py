"""A run's OpenTelemetry trace id: ``runs.trace_id``.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the nullable ``runs.trace_id``; runs recorded before it have none."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Drop ``runs.trace_id``."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("trace_id")
