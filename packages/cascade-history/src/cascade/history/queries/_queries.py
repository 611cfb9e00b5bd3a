"""The history's queries: runs, per-task statistics, the audit trail (one run's tasks:
:mod:`._run_query`).

Each is SQL that SQLite (3.25+: window functions) and PostgreSQL both run
alike, so the two give the same answers. Percentiles are computed in SQL,
nearest-rank, with ``row_number()`` and ``count()`` over each task name
(PostgreSQL's ``percentile_cont`` has no SQLite counterpart); only
``[...]`` classes of a name glob are matched in Python, after a ``LIKE`` that
narrows the rows in SQL.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from cascade.reader import DecisionCount

from ..access._access import refused_events, vouch
from ..audit._cancels import cancel_events
from ..audit._decisions import decision_events
from ..audit._lineage import origin_of, start_events
from ..audit._notify_posts import post_events
from ..audit._witness import witness
from ..records._audit_records import AuditEvent
from ..records._records import (
    Claim,
    Execution,
    RunLink,
    RunSummary,
    SourceGap,
    TaskStats,
)
from ..store._schema import (
    constraint_events,
    decisions,
    presence,
    run_claims,
    run_events,
    run_refusals,
    runs,
    source_gaps,
    task_events,
)
from ._task_filters import ESCAPE, FINISHED_STATES, glob_to_like, last_events

__all__ = [
    "FINISHED_STATES",
    "STATUSES",
    "RUN_COLUMNS",
    "Among",
    "among_filter",
    "LOST",
    "audit_query",
    "escape_like",
    "executions_query",
    "gaps_query",
    "glob_to_like",
    "lineage_query",
    "run_ids_query",
    "status_name",
    "summaries",
    "tasks_query",
]

STATUSES = ("Running", "Succeeded", "Failed", "Cancelled", "Lost", "Finished")
"""A run's statuses. ``Cancelled``: its engine said so on its end (its status on the wire is
``Failed``); ``Lost``: no end arrived, and its engine went offline after its last event (it
died, or its end was lost; an event after that makes it ``Running`` again); ``Finished``: an
older engine's end that did not say how it went."""

# A run that is Running by its events, and whose engine went offline after the last of them.
LOST = (runs.c.status == "Running") & sa.exists().where(
    presence.c.source == runs.c.source,
    presence.c.status == "offline",
    presence.c.received_at > runs.c.last_ts,
)
# When a lost run's engine went offline: the first offline status after its last event.
_LOST_AT = (
    sa.select(sa.func.min(presence.c.received_at))
    .where(
        presence.c.source == runs.c.source,
        presence.c.status == "offline",
        presence.c.received_at > runs.c.last_ts,
    )
    .scalar_subquery()
)
RUN_COLUMNS = [
    *(column for column in runs.c if column.name != "status"),
    sa.case((LOST, _LOST_AT), else_=sa.null()).label("lost_at"),
    sa.case((LOST, "Lost"), else_=runs.c.status).label("status"),
]


Among = Iterable[tuple[str, str | None]]
"""Orgs (``(org, None)``) and projects (``(org, project)``): the runs someone may see."""


def among_filter(among: Among) -> sa.ColumnElement[bool]:
    """The runs of ``among``'s orgs and projects (none when empty), as a condition on ``runs``:
    put in the query that reads them, so that a run one may not see costs what an unknown one
    does (the same query, no row)."""
    return sa.or_(
        sa.false(),
        *(
            runs.c.org_id == org_id
            if project_id is None
            else sa.and_(runs.c.org_id == org_id, runs.c.project_id == project_id)
            for org_id, project_id in among
        ),
    )


def status_name(status: str) -> str:
    """The status ``status`` names, in any case (``failed`` → ``Failed``); else ``ValueError``."""
    for name in STATUSES:
        if status.lower() == name.lower():
            return name
    known = ", ".join(name.lower() for name in STATUSES)
    raise ValueError(f"unknown run status {status!r}: use one of {known}")


def escape_like(text: str) -> str:
    """``text`` as a ``LIKE`` pattern matching it alone (``%``, ``_`` and ``\\`` escaped)."""
    return "".join(ESCAPE + c if c in "%_\\" else c for c in text)


def summaries(
    connection: sa.Connection, rows: Sequence[sa.Row[Any]], *, counts: bool = True
) -> list[RunSummary]:
    """The runs of ``rows``, their tasks counted by state and their missing events (without
    ``counts``: neither, ``tasks`` empty and ``missing_events`` ``None``)."""
    ids = [row.run_id for row in rows] if counts else []
    by_state: dict[str, dict[str, int]] = {run_id: {} for run_id in ids}
    numbered: dict[str, int] = dict.fromkeys(ids, 0)
    refused: dict[str, dict[str, int]] = {run_id: {} for run_id in ids}
    claims: dict[str, list[Claim]] = {run_id: [] for run_id in ids}
    decided: dict[str, list[DecisionCount]] = {run_id: [] for run_id in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for run_id, decision, by, count in connection.execute(_applied_decisions(chunk)):
            decided[run_id].append(DecisionCount(decision, by, count))
        rr = run_refusals.c
        for run_id, reason, count in connection.execute(
            sa.select(rr.run_id, rr.reason, rr.refused).where(rr.run_id.in_(chunk))
        ):
            refused[run_id][reason] = count
        rc = run_claims.c
        for run_id, source, count, set_aside in connection.execute(
            sa.select(rc.run_id, rc.source, rc.refused, rc.set_aside)
            .where(rc.run_id.in_(chunk))
            .order_by(rc.run_id, rc.source)
        ):
            claims[run_id].append(Claim(source, count, set_aside))
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
    rerun_of, replaced_by = _links(connection, rows)
    lines = _lines(connection, rows, replaced_by) if counts else {}
    return [
        RunSummary(
            run_id=row.run_id,
            org_id=row.org_id,
            project_id=row.project_id,
            source=row.source,
            status=row.status,
            started_at=row.started_at,
            ended_at=row.ended_at,
            lost_at=row.lost_at,
            error=row.error,
            planned_tasks=row.planned_tasks,
            tasks=by_state.get(row.run_id, {}),
            dropped_telemetry=row.dropped_telemetry,
            missing_events=None
            if row.last_seq is None or not counts
            else max(0, row.last_seq - numbered[row.run_id]),
            trace_id=row.trace_id,
            refused=refused.get(row.run_id, {}),
            received_at=row.received_at,
            vouched=row.vouched,
            claims=[claim for claim in claims.get(row.run_id, []) if claim.source != row.source],
            name=row.name,
            origin=origin_of(row),
            rerun_of=None if row.rerun_of is None else rerun_of.get(row.rerun_of),
            replaced_by=replaced_by.get(row.run_id, []),
            decisions=decided.get(row.run_id, []),
            line=lines.get(row.root_run or row.run_id, []),
        )
        for row in rows
    ]


def _applied_decisions(run_ids: list[str]) -> sa.Select[Any]:
    """(run_id, decision, issued_by, count): the decisions the runs' engines applied, by kind
    and person, in the order first applied (the audit's ``decisions``, indexed by run)."""
    d = decisions.c
    return (
        sa.select(d.run_id, d.decision, d.issued_by, sa.func.count())
        .where(d.run_id.in_(run_ids), d.outcome == "applied")
        .group_by(d.run_id, d.decision, d.issued_by)
        .order_by(d.run_id, sa.func.min(d.id))
    )


_STATUS = RUN_COLUMNS[-1]


def _links(
    connection: sa.Connection, rows: Sequence[sa.Row[Any]]
) -> tuple[dict[str, RunLink], dict[str, list[RunLink]]]:
    """The runs ``rows`` rerun (by id, with their status; one the history does not have: its
    status ``None``), and the runs that rerun each of ``rows``, oldest first."""
    wanted = sorted({row.rerun_of for row in rows if row.rerun_of is not None})
    rerun_of = {run_id: RunLink(run_id, None) for run_id in wanted}
    replaced_by: dict[str, list[RunLink]] = {}
    ids = [row.run_id for row in rows]
    for start in range(0, max(len(wanted), len(ids)), 500):
        chunk = wanted[start : start + 500]
        if chunk:
            query = sa.select(runs.c.run_id, runs.c.name, _STATUS).where(runs.c.run_id.in_(chunk))
            for run_id, name, status in connection.execute(query):
                rerun_of[run_id] = RunLink(run_id, status, name)
        chunk = ids[start : start + 500]
        if chunk:
            query = (
                sa.select(
                    runs.c.rerun_of,
                    runs.c.run_id,
                    runs.c.name,
                    _STATUS,
                    runs.c.lost_engine,
                    runs.c.source,
                )
                .where(runs.c.rerun_of.in_(chunk))
                .order_by(runs.c.started_at, runs.c.run_id)
            )
            for row in connection.execute(query):
                replaced_by.setdefault(row.rerun_of, []).append(
                    RunLink(
                        row.run_id,
                        row.status,
                        row.name,
                        lost_engine=row.lost_engine,
                        source=row.source if row.lost_engine is not None else None,
                    )
                )
    return rerun_of, replaced_by


LINE_RUNS = 1000
"""The runs of the lines of one page of runs read at most (a line is rarely longer than a few)."""


def _lines(
    connection: sa.Connection, rows: Sequence[sa.Row[Any]], replaced_by: dict[str, list[RunLink]]
) -> dict[str, list[RunLink]]:
    """The lines of work of ``rows``' reruns and rerun runs, by their first run's id: that run
    and every rerun of it (of its org and project), oldest first, each with how many of its
    tasks reused a result of an earlier run. A run never rerun, and no rerun, has none."""
    where = {
        row.root_run or row.run_id: (row.org_id, row.project_id)
        for row in rows
        if row.root_run is not None or row.rerun_of is not None or replaced_by.get(row.run_id)
    }
    if not where:
        return {}
    roots = sorted(where)
    found: list[Any] = []
    for start in range(0, len(roots), 500):
        chunk = roots[start : start + 500]
        columns = (runs.c.run_id, runs.c.root_run, runs.c.org_id, runs.c.project_id, runs.c.name)
        query = (
            sa.select(*columns, _STATUS)
            .where(runs.c.run_id.in_(chunk) | runs.c.root_run.in_(chunk))
            .order_by(runs.c.started_at, runs.c.run_id)
            .limit(LINE_RUNS)
        )
        found += connection.execute(query).all()
    ids = [row.run_id for row in found]
    reused: dict[str, int] = {}
    te = task_events.c
    for start in range(0, len(ids), 500):
        counted = (
            sa.select(te.run_id, sa.func.count(sa.distinct(te.task_id)))
            .where(te.run_id.in_(ids[start : start + 500]), te.reused_from.is_not(None))
            .group_by(te.run_id)
        )
        reused.update({str(run_id): int(count) for run_id, count in connection.execute(counted)})
    lines: dict[str, list[RunLink]] = {}
    for row in found:
        root = row.root_run or row.run_id
        if where.get(root) == (row.org_id, row.project_id):
            link = RunLink(row.run_id, row.status, row.name, reused.get(row.run_id, 0))
            lines.setdefault(root, []).append(link)
    return lines


def lineage_query(
    connection: sa.Connection, run_id: str, limit: int, among: Among | None = None
) -> list[RunSummary]:
    """The runs of ``run_id``'s line (its root run and every rerun of it, the reruns of
    those included), oldest first, at most ``limit``; ``[]`` for a run the history does not
    have (of ``among``'s runs only, when given)."""
    seen = [among_filter(among)] if among is not None else []
    found = connection.execute(
        sa.select(runs.c.run_id, runs.c.root_run).where(runs.c.run_id == run_id, *seen)
    ).first()
    if found is None:
        return []
    root = found.root_run or found.run_id
    query = (
        sa.select(*RUN_COLUMNS)
        .where((runs.c.run_id == root) | (runs.c.root_run == root), *seen)
        .order_by(runs.c.started_at, runs.c.run_id)
        .limit(limit)
    )
    return summaries(connection, connection.execute(query).all())


def _last_states(run_ids: list[str]) -> sa.Select[Any]:
    """(run_id, state, count): each run's tasks counted by the state each was last seen in."""
    te = task_events
    ranked = last_events((te.c.run_id, te.c.state), te.c.run_id.in_(run_ids))
    return (
        sa.select(ranked.c.run_id, ranked.c.state, sa.func.count())
        .where(ranked.c.rank == 1)
        .group_by(ranked.c.run_id, ranked.c.state)
    )


def run_ids_query(
    connection: sa.Connection, prefix: str, limit: int, among: Among | None = None
) -> list[str]:
    """The ids of the runs whose id starts with ``prefix``, in order, at most ``limit``; of
    ``among``'s runs only, when given."""
    pattern = escape_like(prefix) + "%"
    query = sa.select(runs.c.run_id).where(runs.c.run_id.like(pattern, escape=ESCAPE))
    if among is not None:
        query = query.where(among_filter(among))
    return list(connection.execute(query.order_by(runs.c.run_id).limit(limit)).scalars())


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
    ).where(
        te.c.state.in_(("COMPLETED", "FAILED")),
        te.c.reused_from.is_(None),
        te.c.cached.is_(None),  # a cache's result: no execution
    )
    if since is not None:
        ranked_query = ranked_query.where(te.c.ts >= since)
    if name_glob is not None:
        ranked_query = ranked_query.where(te.c.task_name.like(glob_to_like(name_glob), ESCAPE))
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
        .where(
            te.c.task_name == name,
            te.c.state.in_(("COMPLETED", "FAILED")),
            te.c.reused_from.is_(None),  # a result reused: no execution
            te.c.cached.is_(None),  # nor a cache's
        )
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
    """Constraint changes, cancels, decisions, the dashboards' refusals and notifiers' posts
    newest first, with the expiries that passed unanswered; each vouched for where a
    dashboard's row does (``_access``)."""
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
    events.extend(decision_events(connection, since=since, limit=limit))
    events.extend(refused_events(connection, since=since, limit=limit))
    events.extend(start_events(connection, since=since, limit=limit))
    events.extend(post_events(connection, since=since, limit=limit))
    events.sort(key=lambda event: event.at, reverse=True)
    return witness(connection, vouch(connection, events[:limit]))


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
