"""`cascade notify`'s claims on events (``notify_claims``: which notifier of a group posts an
event, with a lease) and its audit (``notify_posts``: each post, or final failure).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing was claimed nor posted before."""
    op.create_table(
        "notify_claims",
        sa.Column("notifier_group", sa.String(length=256), nullable=False),
        sa.Column("event_key", sa.String(length=1024), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("claimed_at", sa.Double(), nullable=False),
        sa.Column("takeovers", sa.Integer(), nullable=False),
        sa.Column("posted_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("notifier_group", "event_key", name=op.f("pk_notify_claims")),
    )
    op.create_index(
        op.f("ix_notify_claims_claimed_at"), "notify_claims", ["claimed_at"], unique=False
    )
    op.create_table(
        "notify_posts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=1024), nullable=False),
        sa.Column("run_id", sa.String(length=1024), nullable=True),
        sa.Column("task_id", sa.String(length=1024), nullable=True),
        sa.Column("source", sa.String(length=1024), nullable=True),
        sa.Column("webhook", sa.String(length=1024), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("notifier", sa.String(length=256), nullable=False),
        sa.Column("notifier_group", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_posts")),
    )
    op.create_index(op.f("ix_notify_posts_at"), "notify_posts", ["at"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_notify_posts_at"), table_name="notify_posts")
    op.drop_table("notify_posts")
    op.drop_index(op.f("ix_notify_claims_claimed_at"), table_name="notify_claims")
    op.drop_table("notify_claims")
