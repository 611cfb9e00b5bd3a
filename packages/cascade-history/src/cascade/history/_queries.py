"""The history's queries: runs, one run's tasks, per-task statistics, the audit trail.

Each is SQL that SQLite (3.25+: window functions) and PostgreSQL both run
alike, so the two give the same answers. Percentiles are computed in SQL,
nearest-rank, with ``row_number()`` and ``count()`` over each task name
(PostgreSQL's ``percentile_cont`` has no SQLite counterpart); only
``[...]`` classes of a name glob are matched in Python, after a ``LIKE`` that
narrows the rows in SQL.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ._cancels import cancel_events
from ._records import (
    AuditEvent,
    Execution,
    RunDetail,
    RunSummary,
    SourceGap,
    StateChange,
    TaskHistory,
    TaskStats,
)
from ._schema import constraint_events, presence, run_events, runs, source_gaps, task_events

__all__ = [
    "FINISHED_STATES",
    "STATES_KEPT",
    "STATUSES",
    "audit_query",
    "executions_query",
    "gaps_query",
    "glob_to_like",
    "run_ids_query",
    "run_query",
    "runs_query",
    "status_name",
    "tasks_query",
]

STATES_KEPT = 100
"""A task's last states a page of a run keeps (those before are counted, not listed)."""

FINISHED_STATES = ("COMPLETED", "FAILED", "SKIPPED", "CANCELLED")
"""Task states a task does not leave."""

STATUSES = ("Running", "Succeeded", "Failed", "Cancelled", "Lost", "Finished")
"""A run's statuses. ``Cancelled``: its engine said so on its end (its status on the wire is
``Failed``); ``Lost``: no end arrived, and its engine went offline after its last event (it
died, or its end was lost; an event after that makes it ``Running`` again); ``Finished``: an
older engine's end that did not say how it went."""

# A run that is Running by its events, and whose engine went offline after the last of them.
_LOST = (runs.c.status == "Running") & sa.exists().where(
    presence.c.source == runs.c.source,
    presence.c.status == "offline",
    presence.c.received_at > runs.c.last_ts,
)
_RUN_COLUMNS = [
    *(column for column in runs.c if column.name != "status"),
    sa.case((_LOST, "Lost"), else_=runs.c.status).label("status"),
]

_ESCAPE = "\\"


def status_name(status: str) -> str:
    """The status ``status`` names, in any case (``failed`` → ``Failed``); else ``ValueError``."""
    for name in STATUSES:
        if status.lower() == name.lower():
            return name
    known = ", ".join(name.lower() for name in STATUSES)
    raise ValueError(f"unknown run status {status!r}: use one of {known}")


def glob_to_like(glob: str) -> str:
    """A ``LIKE`` pattern matching at least every name ``glob`` matches (``*``, ``?``, ``[...]``).

    ``[...]`` becomes ``_`` (one character), so names are checked against the
    glob itself afterwards; ``LIKE`` is case-insensitive in SQLite, too.
    """
    out: list[str] = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[" and "]" in glob[index + 2 :]:
            out.append("_")
            index = glob.index("]", index + 2)
        elif char in "%_\\":
            out.append(_ESCAPE + char)
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _escape_like(text: str) -> str:
    return "".join(_ESCAPE + c if c in "%_\\" else c for c in text)


def runs_query(
    connection: sa.Connection,
    *,
    since: float | None,
    status: str | None,
    project: str | None,
    task: str | None,
    source: str | None,
    limit: int,
) -> list[RunSummary]:
    """Runs newest first (by start), filtered as :meth:`History.runs` says."""
    query = sa.select(*_RUN_COLUMNS).order_by(runs.c.started_at.desc(), runs.c.run_id)
    query = query.limit(limit)
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    if status is not None:
        name = status_name(status)
        if name == "Lost":
            query = query.where(_LOST)
        elif name == "Running":
            query = query.where(runs.c.status == name, ~_LOST)
        else:
            query = query.where(runs.c.status == name)
    if project is not None:
        query = query.where(runs.c.project_id == project)
    if source is not None:
        query = query.where(runs.c.source == source)
    if task is not None:
        query = query.where(
            sa.exists().where(
                task_events.c.run_id == runs.c.run_id, task_events.c.task_name == task
            )
        )
    rows = connection.execute(query).all()
    return _summaries(connection, rows)


def _summaries(
    connection: sa.Connection, rows: Sequence[sa.Row[Any]], *, counts: bool = True
) -> list[RunSummary]:
    """The runs of ``rows``, their tasks counted by state and their missing events (without
    ``counts``: neither, ``tasks`` empty and ``missing_events`` ``None``)."""
    ids = [row.run_id for row in rows] if counts else []
    by_state: dict[str, dict[str, int]] = {run_id: {} for run_id in ids}
    numbered: dict[str, int] = dict.fromkeys(ids, 0)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for run_id, state, count in connection.execute(_last_states(chunk)):
            by_state[run_id][state] = count
        for table in (task_events, run_events):
            query = (
                sa.select(table.c.run_id, sa.func.count())
                .where(table.c.run_id.in_(chunk), table.c.seq.is_not(None))
                .group_by(table.c.run_id)
            )
            for run_id, count in connection.execute(query):
                numbered[run_id] += count
    return [
        RunSummary(
            run_id=row.run_id,
            org_id=row.org_id,
            project_id=row.project_id,
            source=row.source,
            status=row.status,
            started_at=row.started_at,
            ended_at=row.ended_at,
            error=row.error,
            planned_tasks=row.planned_tasks,
            tasks=by_state.get(row.run_id, {}),
            dropped_telemetry=row.dropped_telemetry,
            missing_events=None
            if row.last_seq is None or not counts
            else max(0, row.last_seq - numbered[row.run_id]),
            trace_id=row.trace_id,
        )
        for row in rows
    ]


def _last_states(run_ids: list[str]) -> sa.Select[Any]:
    """(run_id, state, count): each run's tasks counted by the state each was last seen in."""
    te = task_events
    finished_first = sa.case((te.c.state.in_(FINISHED_STATES), 0), else_=1)
    ranked = (
        sa.select(
            te.c.run_id,
            te.c.state,
            sa.func.row_number()
            .over(
                partition_by=(te.c.run_id, te.c.task_id),
                order_by=(te.c.ts.desc(), finished_first, te.c.id.desc()),
            )
            .label("rank"),
        )
        .where(te.c.run_id.in_(run_ids))
        .subquery()
    )
    return (
        sa.select(ranked.c.run_id, ranked.c.state, sa.func.count())
        .where(ranked.c.rank == 1)
        .group_by(ranked.c.run_id, ranked.c.state)
    )


def run_ids_query(connection: sa.Connection, prefix: str, limit: int) -> list[str]:
    """The ids of the runs whose id starts with ``prefix``, in order, at most ``limit``."""
    pattern = _escape_like(prefix) + "%"
    return list(
        connection.execute(
            sa.select(runs.c.run_id)
            .where(runs.c.run_id.like(pattern, escape=_ESCAPE))
            .order_by(runs.c.run_id)
            .limit(limit)
        ).scalars()
    )


def run_query(
    connection: sa.Connection,
    run_id: str,
    *,
    after: str | None = None,
    limit: int | None = None,
    counts: bool = True,
) -> RunDetail | None:
    """One run (by its id, or a prefix of it that only it has) and its tasks: all of them, or
    with ``limit`` a page of at most that many (by task id, after ``after``), the next page's
    cursor in :attr:`RunDetail.next_after`. Either way a page's tasks are in the order they
    first appeared.

    Raises ``ValueError`` for a prefix that several runs' ids start with.
    """
    row = connection.execute(sa.select(*_RUN_COLUMNS).where(runs.c.run_id == run_id)).first()
    if row is None and run_id:
        pattern = _escape_like(run_id) + "%"
        found = connection.execute(
            sa.select(*_RUN_COLUMNS).where(runs.c.run_id.like(pattern, escape=_ESCAPE)).limit(2)
        ).all()
        if len(found) > 1:
            raise ValueError(f"several runs' ids start with {run_id!r}: give more of it")
        row = found[0] if found else None
    if row is None:
        return None
    summary = _summaries(connection, [row], counts=counts)[0]
    te = task_events
    where = [te.c.run_id == row.run_id]
    next_after = None
    if after is not None or limit is not None:
        # keyset on the (run_id, task_id, ts) index: a page costs its size, not the run's
        ids_query = sa.select(te.c.task_id).where(*where).distinct().order_by(te.c.task_id)
        if after is not None:
            ids_query = ids_query.where(te.c.task_id > after)
        if limit is not None:
            ids_query = ids_query.limit(limit + 1)
        ids = list(connection.execute(ids_query).scalars())
        if limit is not None and len(ids) > limit:
            ids = ids[:limit]
            next_after = ids[-1]
        if not ids:
            return RunDetail(summary, [])
        where += [te.c.task_id >= ids[0], te.c.task_id <= ids[-1]]
    end = row.ended_at if row.ended_at is not None else row.last_ts
    if after is None and limit is None:
        events = connection.execute(sa.select(te).where(*where).order_by(te.c.ts, te.c.id)).all()
        by_task: dict[str, list[sa.Row[Any]]] = {}
        for event in events:
            by_task.setdefault(event.task_id, []).append(event)
        tasks = [_task(task_events_, end) for task_events_ in by_task.values()]
        return RunDetail(summary, tasks, next_after)
    return RunDetail(summary, _bounded_tasks(connection, where, end), next_after)


def _bounded_tasks(connection: sa.Connection, where: list[Any], end: float) -> list[TaskHistory]:
    """The tasks of a page, each with its last :data:`STATES_KEPT` states: a page is bounded
    however many states a task went through. What the states left out change (attempts,
    first start) is counted in SQL."""
    te = task_events
    ranked = (
        sa.select(
            te,
            sa.func.row_number()
            .over(partition_by=te.c.task_id, order_by=(te.c.ts.desc(), te.c.id.desc()))
            .label("from_last"),
        )
        .where(*where)
        .subquery()
    )
    events = connection.execute(
        sa.select(ranked)
        .where(ranked.c.from_last <= STATES_KEPT)
        .order_by(ranked.c.ts, ranked.c.id)
    ).all()
    running = te.c.state == "RUNNING"
    totals = {
        task_id: (count, int(starts or 0), first_start)
        for task_id, count, starts, first_start in connection.execute(
            sa.select(
                te.c.task_id,
                sa.func.count(),
                sa.func.sum(sa.case((running, 1), else_=0)),
                sa.func.min(sa.case((running, te.c.ts))),
            )
            .where(*where)
            .group_by(te.c.task_id)
        )
    }
    by_task: dict[str, list[sa.Row[Any]]] = {}
    for event in events:
        by_task.setdefault(event.task_id, []).append(event)
    tasks = []
    for task_id, kept in by_task.items():
        count, starts, first_start = totals[task_id]
        tasks.append(_task(kept, end, omitted=(count - len(kept), starts, first_start)))
    return tasks


def _task(
    events: list[sa.Row[Any]],
    run_end: float,
    omitted: tuple[int, int, float | None] | None = None,
) -> TaskHistory:
    """A task's history from its events in time order.

    A state's attempt is the number of times the task had started by then;
    a ``BLOCKED`` one is the attempt it holds back (one more). ``omitted``: its earliest
    states were left out; how many, and its starts and first start counting them.
    """
    kept_starts = sum(1 for event in events if event.state == "RUNNING")
    started = 0 if omitted is None else omitted[1] - kept_starts
    blocked_s = 0.0
    changes: list[StateChange] = []
    for index, event in enumerate(events):
        if event.state == "RUNNING":
            started += 1
        attempt = started + 1 if event.state == "BLOCKED" else started
        if event.state == "BLOCKED":
            until = events[index + 1].ts if index + 1 < len(events) else run_end
            blocked_s += max(0.0, until - event.ts)
        held_by = event.held_by if isinstance(event.held_by, list) else None
        changes.append(
            StateChange(event.state, event.ts, attempt, event.duration_ms, event.error, held_by)
        )
    last = events[-1]
    errors = [event.error for event in events if event.error]
    first_start = next((event.ts for event in events if event.state == "RUNNING"), None)
    if omitted is not None and omitted[0]:
        first_start = omitted[2]
    return TaskHistory(
        task_id=last.task_id,
        task_name=last.task_name,
        state=last.state,
        attempts=started,
        started_at=first_start,
        ended_at=last.ts if last.state in FINISHED_STATES else None,
        duration_ms=last.duration_ms,
        error=errors[-1] if errors else "",
        blocked_s=blocked_s,
        states=changes,
        states_omitted=0 if omitted is None else omitted[0],
    )


def tasks_query(
    connection: sa.Connection, *, since: float | None, name_glob: str | None
) -> list[TaskStats]:
    """Per task name, its finished executions since ``since``: see :class:`TaskStats`."""
    te = task_events
    ranked_query = sa.select(
        te.c.task_name,
        te.c.run_id,
        te.c.state,
        te.c.duration_ms,
        sa.func.row_number()
        .over(partition_by=te.c.task_name, order_by=te.c.duration_ms)
        .label("rank"),
        sa.func.count().over(partition_by=te.c.task_name).label("n"),
    ).where(te.c.state.in_(("COMPLETED", "FAILED")))
    if since is not None:
        ranked_query = ranked_query.where(te.c.ts >= since)
    if name_glob is not None:
        ranked_query = ranked_query.where(te.c.task_name.like(glob_to_like(name_glob), _ESCAPE))
    ranked = ranked_query.subquery()
    query = (
        sa.select(
            ranked.c.task_name,
            sa.func.count(sa.distinct(ranked.c.run_id)),
            sa.func.count(),
            sa.func.sum(sa.case((ranked.c.state == "FAILED", 1), else_=0)),
            # nearest rank: ceil(p * n) in integers, the same in both dialects
            sa.func.max(sa.case((ranked.c.rank == (ranked.c.n + 1) // 2, ranked.c.duration_ms))),
            sa.func.max(
                sa.case((ranked.c.rank == (ranked.c.n * 95 + 99) // 100, ranked.c.duration_ms))
            ),
            sa.func.max(ranked.c.duration_ms),
        )
        .group_by(ranked.c.task_name)
        .order_by(ranked.c.task_name)
    )
    return [
        TaskStats(name, runs_, executions, int(failures), p50, p95, longest)
        for name, runs_, executions, failures, p50, p95, longest in connection.execute(query)
        if name_glob is None or fnmatch.fnmatchcase(name, name_glob)
    ]


def executions_query(
    connection: sa.Connection, *, name: str, since: float | None, limit: int
) -> list[Execution]:
    """The last ``limit`` finished executions of tasks named ``name``, oldest first."""
    te = task_events
    query = (
        sa.select(te.c.run_id, te.c.task_id, te.c.ts, te.c.duration_ms, te.c.state)
        .where(te.c.task_name == name, te.c.state.in_(("COMPLETED", "FAILED")))
        .order_by(te.c.ts.desc(), te.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(te.c.ts >= since)
    rows = connection.execute(query).all()
    return [Execution(*row) for row in reversed(rows)]


def _audit_event(
    row: sa.Row[Any], at: float, action: str, expires_at: float | None, params: Any
) -> AuditEvent:
    return AuditEvent(
        at,
        action,
        row.scope,
        row.type,
        params,
        expires_at,
        row.topic,
        row.constraint_id,
        reason=row.reason,
        issued_by=row.issued_by,
        issued_at=row.issued_at,
    )


def audit_query(
    connection: sa.Connection, *, since: float | None, limit: int, now: float
) -> list[AuditEvent]:
    """Constraint changes and cancels newest first, with the expiries that passed unanswered."""
    ce = constraint_events
    following = ce.alias("following")
    query = (
        sa.select(ce, following.c.at.label("next_at"))
        .outerjoin(
            following,
            (following.c.topic_key == ce.c.topic_key) & (following.c.change == ce.c.change + 1),
        )
        .order_by(ce.c.at.desc(), ce.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        expiring = (ce.c.action == "set") & (ce.c.expires_at >= since)
        query = query.where((ce.c.at >= since) | expiring)
    events: list[AuditEvent] = []
    for row in connection.execute(query):
        params = row.params if isinstance(row.params, dict) else None
        if since is None or row.at >= since:
            events.append(_audit_event(row, row.at, row.action, row.expires_at, params))
        expiry = row.expires_at
        if (
            row.action == "set"
            and expiry is not None
            and expiry <= now
            and (since is None or expiry >= since)
            and (row.next_at is None or row.next_at > expiry)
        ):
            events.append(_audit_event(row, expiry, "expired", expiry, params))
    events.extend(cancel_events(connection, since=since, limit=limit))
    events.sort(key=lambda event: event.at, reverse=True)
    return events[:limit]


def gaps_query(
    connection: sa.Connection, *, since: float | None, source: str | None
) -> list[SourceGap]:
    """Recorders' gap counts, latest change first (see :meth:`History.gaps`)."""
    sg = source_gaps
    query = (
        sa.select(sg)
        .where(sg.c.missed > 0)
        .order_by(sg.c.last_at.desc(), sg.c.source, sg.c.recorder)
    )
    if since is not None:
        query = query.where(sg.c.last_at >= since)
    if source is not None:
        query = query.where(sg.c.source == source)
    return [
        SourceGap(row.source, row.recorder, row.missed, row.first_at, row.last_at)
        for row in connection.execute(query)
    ]
