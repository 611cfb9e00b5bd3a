"""Pruning the history: old runs with everything kept about them, and old task log lines."""

from __future__ import annotations

import sqlalchemy as sa

from ..store._schema import (
    access_events,
    cancels,
    constraint_events,
    decisions,
    issued_notes,
    log_batches,
    log_lines,
    log_runs,
    log_tasks,
    presence,
    run_claims,
    run_events,
    run_graphs,
    run_refusals,
    runs,
    source_gaps,
    task_events,
)
from ._rollup import prune_rollup

__all__ = ["LINES_A_PRUNE", "prune_log_lines", "prune_runs"]

LINES_A_PRUNE = 20_000
"""The log lines one pruning transaction deletes at most."""


def prune_runs(connection: sa.Connection, before: float, batch: int) -> int:
    """One batch of what :meth:`History.prune` deletes; how many rows went."""
    doomed = [
        run_id
        for (run_id,) in connection.execute(
            sa.select(runs.c.run_id).where(runs.c.last_received_at < before).limit(batch)
        )
    ]
    logged_only = [
        run_id
        for (run_id,) in connection.execute(
            sa.select(log_tasks.c.run_id)
            .where(~sa.exists().where(runs.c.run_id == log_tasks.c.run_id))
            .group_by(log_tasks.c.run_id)
            .having(sa.func.max(log_tasks.c.last_at) < before)
            .limit(batch)
        )
    ]
    deleted = 0
    if doomed or logged_only:
        gone = doomed + logged_only
        lines = sa.select(log_lines.c.id).where(log_lines.c.run_id.in_(gone))
        deleted = connection.execute(
            sa.delete(log_lines).where(
                log_lines.c.id.in_(lines.limit(LINES_A_PRUNE).scalar_subquery())
            )
        ).rowcount
        if deleted >= LINES_A_PRUNE:  # more of their lines: the runs go later
            return deleted
        for table in (
            task_events,
            run_events,
            run_refusals,
            run_claims,
            run_graphs,
            log_batches,
            log_runs,
            log_tasks,
        ):
            deleted += connection.execute(sa.delete(table).where(table.c.run_id.in_(gone))).rowcount
        deleted += connection.execute(sa.delete(runs).where(runs.c.run_id.in_(doomed))).rowcount
    for table, when in (
        (presence, presence.c.received_at),
        (constraint_events, constraint_events.c.at),
        (cancels, cancels.c.at),
        (decisions, decisions.c.at),
        (access_events, access_events.c.at),
        (issued_notes, issued_notes.c.at),
    ):
        oldest = sa.select(table.c.id).where(when < before).limit(batch).scalar_subquery()
        deleted += connection.execute(sa.delete(table).where(table.c.id.in_(oldest))).rowcount
    for counts, last in (
        (source_gaps, source_gaps.c.last_at),
        (run_refusals, run_refusals.c.last_at),
        (run_claims, run_claims.c.last_at),
    ):
        deleted += connection.execute(sa.delete(counts).where(last < before)).rowcount
    return deleted + prune_rollup(connection, before, doomed)


def prune_log_lines(connection: sa.Connection, before: float, batch: int) -> int:
    """One batch of what :meth:`History.prune_logs` deletes; how many rows went."""
    old = sa.select(log_lines.c.id).where(log_lines.c.received_at < before).limit(batch)
    deleted = connection.execute(
        sa.delete(log_lines).where(log_lines.c.id.in_(old.scalar_subquery()))
    ).rowcount
    batches = (
        sa.select(log_batches.c.run_id, log_batches.c.seq)
        .where(log_batches.c.received_at < before)
        .limit(batch)
    )
    key = sa.tuple_(log_batches.c.run_id, log_batches.c.seq)
    return deleted + connection.execute(sa.delete(log_batches).where(key.in_(batches))).rowcount
