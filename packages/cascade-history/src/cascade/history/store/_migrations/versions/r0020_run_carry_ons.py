"""The run a run carries on and the engine whose death it carries on after, where a server
carried it on (``runs.carried_on_from``, ``runs.lost_engine``: its ``ENGINE_STARTED``'s
``origin.carried_on_from`` and ``origin.lost_engine``), so that the lost run's page says where
it went and the carry-on's what it carries on.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision: str | None = "0019"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Runs recorded before carry nothing on."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("carried_on_from", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("lost_engine", sa.String(length=256), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lost_engine")
        batch.drop_column("carried_on_from")
