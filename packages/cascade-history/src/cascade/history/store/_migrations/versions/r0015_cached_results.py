"""Whether a task's result came from its cache (``with_cache``) rather than from running it
(``task_events.cached``: true on such a ``COMPLETED``, null elsewhere); ``reused_from`` names
the run that kept it, when it came from the results store.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Tasks recorded before took nothing from a cache."""
    with op.batch_alter_table("task_events") as batch:
        batch.add_column(sa.Column("cached", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("task_events") as batch:
        batch.drop_column("cached")
