"""Refusals counted per minute in one ``access_events`` row (``count``, ``last_at``), the claim
that named the person (``claim``), and the dashboards' sign-in sessions (``dashboard_sessions``).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Every row so far stands for one access (``count`` 1); no session was kept before."""
    with op.batch_alter_table("access_events") as batch:
        batch.add_column(sa.Column("count", sa.BigInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("claim", sa.String(length=64), nullable=True))
    op.create_table(
        "dashboard_sessions",
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("who", sa.String(length=256), nullable=False),
        sa.Column("claim", sa.String(length=64), nullable=True),
        sa.Column("signed_in_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("revoked_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("handle", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index(op.f("ix_dashboard_sessions_expires_at"), "dashboard_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop the sessions (everyone signs in again) and the counts (a row is one access again)."""
    op.drop_index(op.f("ix_dashboard_sessions_expires_at"), table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    with op.batch_alter_table("access_events") as batch:
        batch.drop_column("claim")
        batch.drop_column("last_at")
        batch.drop_column("count")
