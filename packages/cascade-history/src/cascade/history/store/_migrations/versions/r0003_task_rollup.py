"""Per-task statistics kept at ingest: ``task_rollup``, ``task_runs``, ``task_run_hours``,
filled from the finished executions already stored.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_CHUNK = 50_000
# The bucket rules of this revision (cascade.history.writes._rollup at the time), kept here so that
# the migration does what it did when it was written, whatever the code becomes.
_SMALLEST, _LAST, _LOG_RATIO = 0.01, 1_000, math.log(1.05)


def _bucket(duration_ms: float) -> int:
    if not duration_ms >= _SMALLEST:
        return 0
    if math.isinf(duration_ms):
        return _LAST
    return min(_LAST, 1 + int(math.log(duration_ms / _SMALLEST) / _LOG_RATIO))


def _hour(ts: float) -> float:
    return math.floor(ts / 3600.0) * 3600.0


def upgrade() -> None:
    """Create the three tables and fill them from ``task_events``."""
    rollup = op.create_table(
        "task_rollup",
        sa.Column("task_name", sa.String(length=1024), nullable=False),
        sa.Column("hour", sa.Double(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("executions", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.Column("max_ms", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("task_name", "hour", "bucket", name=op.f("pk_task_rollup")),
    )
    op.create_index(op.f("ix_task_rollup_hour"), "task_rollup", ["hour"], unique=False)
    runs = op.create_table(
        "task_runs",
        sa.Column("run_id", sa.String(length=1024), nullable=False),
        sa.Column("task_name", sa.String(length=1024), nullable=False),
        sa.Column("first_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "task_name", name=op.f("pk_task_runs")),
    )
    hours = op.create_table(
        "task_run_hours",
        sa.Column("task_name", sa.String(length=1024), nullable=False),
        sa.Column("hour", sa.Double(), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("task_name", "hour", name=op.f("pk_task_run_hours")),
    )
    op.create_index(op.f("ix_task_run_hours_hour"), "task_run_hours", ["hour"], unique=False)
    assert rollup is not None
    assert runs is not None
    assert hours is not None
    if context.is_offline_mode():  # the fill reads the rows stored: only online
        op.execute("-- 0003: the rollup is filled from stored executions only when migrated online")
        return
    _fill(op.get_bind(), rollup, runs, hours)


def _fill(connection: sa.Connection, rollup: sa.Table, runs: sa.Table, hours: sa.Table) -> None:
    """Aggregate every finished execution stored, in Python (SQLite may lack ``ln``)."""
    events = sa.table(
        "task_events",
        sa.column("id"),
        sa.column("run_id"),
        sa.column("task_name"),
        sa.column("ts"),
        sa.column("state"),
        sa.column("duration_ms"),
    )
    cells: dict[tuple[str, float, int], list[Any]] = {}
    firsts: dict[tuple[str, str], float] = {}
    last = -1
    while True:  # in chunks by id: no server-side cursor, whose options would outlive it
        chunk = connection.execute(
            sa.select(
                events.c.id,
                events.c.run_id,
                events.c.task_name,
                events.c.ts,
                events.c.state,
                events.c.duration_ms,
            )
            .where(events.c.state.in_(("COMPLETED", "FAILED")), events.c.id > last)
            .order_by(events.c.id)
            .limit(_CHUNK)
        ).all()
        if not chunk:
            break
        last = chunk[-1][0]
        for _, run_id, name, ts, state, duration in chunk:
            cell = cells.setdefault((name, _hour(ts), _bucket(duration)), [0, 0, 0.0])
            cell[0] += 1
            cell[1] += state == "FAILED"
            if duration == duration:
                cell[2] = max(cell[2], duration)
            firsts[(run_id, name)] = min(ts, firsts.get((run_id, name), ts))
    rows = [
        {"task_name": n, "hour": h, "bucket": b, "executions": e, "failures": f, "max_ms": m}
        for (n, h, b), (e, f, m) in cells.items()
    ]
    pairs = [{"run_id": r, "task_name": n, "first_at": t} for (r, n), t in firsts.items()]
    counted: dict[tuple[str, float], int] = {}
    for (_, name), first_at in firsts.items():
        counted[(name, _hour(first_at))] = counted.get((name, _hour(first_at)), 0) + 1
    per_hour = [{"task_name": n, "hour": h, "runs": r} for (n, h), r in counted.items()]
    for table, values in ((rollup, rows), (runs, pairs), (hours, per_hour)):
        for start in range(0, len(values), _CHUNK):
            connection.execute(sa.insert(table), values[start : start + _CHUNK])


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_index(op.f("ix_task_run_hours_hour"), table_name="task_run_hours")
    op.drop_table("task_run_hours")
    op.drop_table("task_runs")
    op.drop_index(op.f("ix_task_rollup_hour"), table_name="task_rollup")
    op.drop_table("task_rollup")
