"""The first schema: runs, task and run events, presence, constraint events.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create every table and index of the first schema."""
    op.create_table(
        "constraint_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("topic_key", sa.String(length=64), nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=1024), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=True),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("constraint_id", sa.String(length=256), nullable=True),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("retained", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_constraint_events")),
        sa.UniqueConstraint(
            "topic_key", "change", name=op.f("uq_constraint_events_topic_key_change")
        ),
    )
    op.create_index(op.f("ix_constraint_events_at"), "constraint_events", ["at"], unique=False)
    op.create_table(
        "presence",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("session", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("conflict_session", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence")),
        sa.UniqueConstraint(
            "source", "status", "session", "ts", name=op.f("uq_presence_source_status_session_ts")
        ),
    )
    op.create_index(op.f("ix_presence_received_at"), "presence", ["received_at"], unique=False)
    op.create_table(
        "run_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tasks", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_events")),
    )
    op.create_index(
        "uq_run_events_run_id_event_ts",
        "run_events",
        ["run_id", "event", "ts"],
        unique=True,
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.create_index(
        "uq_run_events_run_id_seq",
        "run_events",
        ["run_id", "seq"],
        unique=True,
        sqlite_where=sa.text("seq IS NOT NULL"),
        postgresql_where=sa.text("seq IS NOT NULL"),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("org_id", sa.String(length=1024), nullable=False),
        sa.Column("project_id", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("last_ts", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("planned_tasks", sa.Integer(), nullable=True),
        sa.Column("dropped_telemetry", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    op.create_index(
        op.f("ix_runs_project_id_started_at"), "runs", ["project_id", "started_at"], unique=False
    )
    op.create_index(
        op.f("ix_runs_source_started_at"), "runs", ["source", "started_at"], unique=False
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"], unique=False)
    op.create_index(
        op.f("ix_runs_status_started_at"), "runs", ["status", "started_at"], unique=False
    )
    op.create_table(
        "task_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("task_id", sa.String(length=1024), nullable=False),
        sa.Column("task_name", sa.String(length=1024), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
    )
    op.create_index(
        op.f("ix_task_events_run_id_task_id_ts"),
        "task_events",
        ["run_id", "task_id", "ts"],
        unique=False,
    )
    op.create_index(
        op.f("ix_task_events_task_name_ts"), "task_events", ["task_name", "ts"], unique=False
    )
    op.create_index(op.f("ix_task_events_ts"), "task_events", ["ts"], unique=False)
    op.create_index(
        "uq_task_events_run_id_seq",
        "task_events",
        ["run_id", "seq"],
        unique=True,
        sqlite_where=sa.text("seq IS NOT NULL"),
        postgresql_where=sa.text("seq IS NOT NULL"),
    )
    op.create_index(
        "uq_task_events_run_id_task_id_state_ts",
        "task_events",
        ["run_id", "task_id", "state", "ts"],
        unique=True,
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )


def downgrade() -> None:
    """Drop them all."""
    op.drop_index(
        "uq_task_events_run_id_task_id_state_ts",
        table_name="task_events",
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.drop_index(
        "uq_task_events_run_id_seq",
        table_name="task_events",
        sqlite_where=sa.text("seq IS NOT NULL"),
        postgresql_where=sa.text("seq IS NOT NULL"),
    )
    op.drop_index(op.f("ix_task_events_ts"), table_name="task_events")
    op.drop_index(op.f("ix_task_events_task_name_ts"), table_name="task_events")
    op.drop_index(op.f("ix_task_events_run_id_task_id_ts"), table_name="task_events")
    op.drop_table("task_events")
    op.drop_index(op.f("ix_runs_status_started_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_started_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_source_started_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_project_id_started_at"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(
        "uq_run_events_run_id_seq",
        table_name="run_events",
        sqlite_where=sa.text("seq IS NOT NULL"),
        postgresql_where=sa.text("seq IS NOT NULL"),
    )
    op.drop_index(
        "uq_run_events_run_id_event_ts",
        table_name="run_events",
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.drop_table("run_events")
    op.drop_index(op.f("ix_presence_received_at"), table_name="presence")
    op.drop_table("presence")
    op.drop_index(op.f("ix_constraint_events_at"), table_name="constraint_events")
    op.drop_table("constraint_events")
