"""Reading what the runs' tasks logged: a run's lines, its tasks' counts, runs by their text."""

from __future__ import annotations

import sqlalchemy as sa

from ..records._log_records import LogBatches, LogCount, RecordedLogLine
from ..store._schema import log_lines, log_runs, log_tasks, runs
from ._queries import Among, among_filter
from ._task_filters import ESCAPE, name_matches

__all__ = ["log_batches_query", "log_counts_query", "log_lines_query", "runs_logging_query"]

_LINE = (
    log_lines.c.id,
    log_lines.c.run_id,
    log_lines.c.task_id,
    log_lines.c.task_name,
    log_lines.c.attempt,
    log_lines.c.n,
    log_lines.c.ts,
    log_lines.c.level,
    log_lines.c.level_number,
    log_lines.c.logger,
    log_lines.c.message,
    log_lines.c.stream,
    log_lines.c.source,
    log_lines.c.trace_id,
    log_lines.c.span_id,
)
_GLOB = frozenset("*?[")


def log_lines_query(
    connection: sa.Connection,
    run_id: str,
    *,
    task: str | None,
    level: int,
    since: float | None,
    after: int,
    limit: int | None,
    last: bool = False,
    among: Among | None = None,
) -> list[RecordedLogLine]:
    """The lines :meth:`History.log_lines` says, by id (``last``: the newest ``limit``)."""
    query = sa.select(*_LINE).where(log_lines.c.run_id == run_id, log_lines.c.id > after)
    if among is not None:
        query = query.where(_of_runs_among(among))
    if task is not None:
        named = (
            name_matches(log_lines.c.task_name, task)
            if _GLOB.intersection(task)
            else log_lines.c.task_name == task
        )
        query = query.where(sa.or_(log_lines.c.task_id == task, named))
    if level > 0:
        query = query.where(log_lines.c.level_number >= level)
    if since is not None:
        query = query.where(log_lines.c.ts >= since)
    query = query.order_by(log_lines.c.id.desc() if last else log_lines.c.id)
    if limit is not None:
        query = query.limit(limit)
    lines = [RecordedLogLine(**row._asdict()) for row in connection.execute(query)]
    return lines[::-1] if last else lines


def log_counts_query(connection: sa.Connection, run_id: str) -> dict[str, LogCount]:
    """Per task id of the run, its lines stored, dropped, and lost: numbered below the highest
    stored, neither stored nor said dropped over the rate or the queue (the lines dropped over
    the budget are numbered above every line kept)."""
    c = log_tasks.c
    among = c.dropped_rate + c.dropped_queue
    query = (
        sa.select(c.task_id, c.task_name, c.lines, among, c.dropped_budget, c.last_n)
        .where(c.run_id == run_id)
        .order_by(c.task_id)
    )
    return {
        task_id: LogCount(name, lines, among + budget, max(0, last_n - lines - among))
        for task_id, name, lines, among, budget, last_n in connection.execute(query)
    }


def log_batches_query(connection: sa.Connection, run_id: str) -> LogBatches | None:
    """The run's log batches stored and the highest number among them (``None``: none)."""
    c = log_runs.c
    row = connection.execute(sa.select(c.batches, c.last_seq).where(c.run_id == run_id)).first()
    return None if row is None else LogBatches(row[0], row[1])


def _of_runs_among(among: Among) -> sa.ColumnElement[bool]:
    """A line's run is one of ``among``'s (recorded, of its orgs and projects)."""
    return sa.exists().where(runs.c.run_id == log_lines.c.run_id, among_filter(among))


def runs_logging_query(
    connection: sa.Connection,
    text: str,
    *,
    since: float | None,
    limit: int,
    among: Among | None = None,
) -> list[str]:
    """The runs with a line containing ``text`` (any case), latest line first (of
    ``among``'s runs only, when given)."""
    pattern = "%" + "".join(ESCAPE + ch if ch in "%_\\" else ch for ch in text) + "%"
    message = log_lines.c.message
    found = message.ilike(pattern, escape=ESCAPE)  # ILIKE on PostgreSQL, lower() LIKE on SQLite
    latest = sa.func.max(log_lines.c.id)
    query = sa.select(log_lines.c.run_id).where(found)
    if since is not None:
        query = query.where(log_lines.c.received_at >= since)
    if among is not None:
        query = query.where(_of_runs_among(among))
    query = query.group_by(log_lines.c.run_id).order_by(latest.desc()).limit(limit)
    return [run_id for (run_id,) in connection.execute(query)]
