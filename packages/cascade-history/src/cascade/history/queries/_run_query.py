"""One run's tasks: every one, or a page of them (those whose last state or name a filter
picks, too), how many a filter picks, and the few a summary shows (the longest, the first to
reach their state), each in SQL that SQLite and PostgreSQL run alike."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

import sqlalchemy as sa

from ..records._attempts import StateChange
from ..records._records import RunDetail, TaskHistory
from ..store._schema import runs, task_events
from ._queries import RUN_COLUMNS, Among, among_filter, escape_like, summaries
from ._task_filters import ESCAPE, FINISHED_STATES, is_folded, matching, members_of

__all__ = ["STATES_KEPT", "TaskOrder", "count_query", "ranked_query", "run_query"]

_WAITING = ("BLOCKED", "QUEUED")  # before an attempt: a constraint, or a worker

STATES_KEPT = 100
"""A task's last states a page of a run keeps (those before are counted, not listed)."""

TaskOrder = Literal["longest", "earliest"]
"""How :meth:`History.run_tasks <cascade.history.History.run_tasks>` orders a run's tasks:
``longest`` first (by their last event's ``duration_ms``), or ``earliest`` (by when they
reached their last state)."""


def _run_row(
    connection: sa.Connection, run_id: str, among: Among | None = None
) -> sa.Row[Any] | None:
    """The run whose id is ``run_id``, or the one run whose id starts with it (of ``among``'s
    runs only, when given: the others are not there)."""
    seen = [among_filter(among)] if among is not None else []
    row = connection.execute(sa.select(*RUN_COLUMNS).where(runs.c.run_id == run_id, *seen)).first()
    if row is None and run_id:
        pattern = escape_like(run_id) + "%"
        found = connection.execute(
            sa.select(*RUN_COLUMNS)
            .where(runs.c.run_id.like(pattern, escape=ESCAPE), *seen)
            .limit(2)
        ).all()
        if len(found) > 1:
            raise ValueError(f"several runs' ids start with {run_id!r}: give more of it")
        row = found[0] if found else None
    return row


def run_query(
    connection: sa.Connection,
    run_id: str,
    *,
    after: str | None = None,
    limit: int | None = None,
    counts: bool = True,
    states: Collection[str] | None = None,
    name_glob: str | None = None,
    among: Among | None = None,
    items: bool = True,
    item_of: str | None = None,
) -> RunDetail | None:
    """One run (by its id, or a prefix of it that only it has; of ``among``'s runs only,
    when given) and its tasks: all of them, or
    with ``limit`` a page of at most that many (by task id, after ``after``), the next page's
    cursor in :attr:`RunDetail.next_after`. Either way a page's tasks are in the order they
    first appeared. ``states``, ``name_glob``: only the tasks whose last state is one of
    ``states`` and whose name matches ``name_glob`` (a page holds ``limit`` of those).
    ``items=False`` leaves maps' items out (``transform-7[3]``), and loops' iterations
    (``counter-4@7``): each map's, each loop's own task stands for them
    (:func:`~._maps.map_items_query`, :func:`~._loops.loop_iterations_query` count them);
    ``item_of``: only the items of the map, or the iterations of the loop, whose task id it
    is (its row opened).

    Raises ``ValueError`` for a prefix that several runs' ids start with.
    """
    row = _run_row(connection, run_id, among)
    if row is None:
        return None
    summary = summaries(connection, [row], counts=counts)[0]
    te = task_events
    where: list[Any] = [te.c.run_id == row.run_id]
    next_after = None
    filtered = states is not None or name_glob is not None
    if not items:
        where.append(sa.not_(is_folded(te.c.task_id, row.run_id)))
    if item_of is not None:
        where += members_of(te.c.task_id, row.run_id, item_of)
    if after is not None or limit is not None:
        # keyset on the (run_id, task_id, ts) index: a page costs its size, not the run's
        if filtered:
            last, picked = matching(
                row.run_id, states, name_glob, after=after, items=items, item_of=item_of
            )
            ids_query = sa.select(last.c.task_id).where(*picked).order_by(last.c.task_id)
        else:
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
        if filtered:  # the range holds the others in between
            where.append(te.c.task_id.in_(ids))
    elif filtered:
        last, picked = matching(row.run_id, states, name_glob, items=items, item_of=item_of)
        where.append(te.c.task_id.in_(sa.select(last.c.task_id).where(*picked)))
    end = row.ended_at if row.ended_at is not None else row.last_ts
    if after is None and limit is None:
        events = connection.execute(sa.select(te).where(*where).order_by(te.c.ts, te.c.id)).all()
        by_task: dict[str, list[sa.Row[Any]]] = {}
        for event in events:
            by_task.setdefault(event.task_id, []).append(event)
        tasks = [_task(task_events_, end) for task_events_ in by_task.values()]
        return RunDetail(summary, tasks, next_after)
    return RunDetail(summary, _bounded_tasks(connection, where, end), next_after)


def count_query(
    connection: sa.Connection,
    run_id: str,
    *,
    states: Collection[str] | None = None,
    name_glob: str | None = None,
    item_of: str | None = None,
) -> int:
    """How many tasks of the run ``run_id`` (its whole id) ``states`` and ``name_glob`` pick
    (of the items of the map ``item_of`` only, when given)."""
    last, picked = matching(run_id, states, name_glob, item_of=item_of)
    counted = sa.select(sa.func.count()).select_from(last).where(*picked)
    return int(connection.execute(counted).scalar_one())


def ranked_query(
    connection: sa.Connection,
    run_id: str,
    *,
    order: TaskOrder,
    limit: int,
    states: Collection[str] | None = None,
    name_glob: str | None = None,
) -> list[TaskHistory]:
    """At most ``limit`` tasks of the run ``run_id`` (its whole id) that ``states`` and
    ``name_glob`` pick, in ``order``, each as a page of the run has it."""
    row = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    if row is None:
        return []
    last, picked = matching(run_id, states, name_glob)
    by = last.c.duration_ms.desc() if order == "longest" else last.c.ts
    ids = list(
        connection.execute(
            sa.select(last.c.task_id).where(*picked).order_by(by, last.c.task_id).limit(limit)
        ).scalars()
    )
    if not ids:
        return []
    end = row.ended_at if row.ended_at is not None else row.last_ts
    te = task_events
    found = _bounded_tasks(connection, [te.c.run_id == run_id, te.c.task_id.in_(ids)], end)
    by_id = {task.task_id: task for task in found}
    return [by_id[task_id] for task_id in ids if task_id in by_id]


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

    A state's attempt is the number of times the task had started by then; a ``BLOCKED`` or
    ``QUEUED`` one is the attempt it holds back (one more); a ``HELD`` one, the attempt that
    failed; a gate's (``HELD`` before it ever started) and those after it, 1. ``omitted``: its
    earliest states were left out; how many, and its starts and first start counting them.
    """
    kept_starts = sum(1 for event in events if event.state == "RUNNING")
    started = 0 if omitted is None else omitted[1] - kept_starts
    blocked_s = 0.0
    changes: list[StateChange] = []
    gate = False
    for index, event in enumerate(events):
        if event.state == "RUNNING":
            started += 1
        attempt = started + 1 if event.state in _WAITING else started
        if event.state == "HELD" and not started:
            gate = True  # held from its start, awaiting approval: its hold's attempt, 1
        if gate and not attempt:
            attempt = 1
        if event.state == "BLOCKED":
            until = events[index + 1].ts if index + 1 < len(events) else run_end
            blocked_s += max(0.0, until - event.ts)
        held_by = event.held_by if isinstance(event.held_by, list) else None
        changes.append(
            StateChange(
                event.state,
                event.ts,
                attempt,
                event.duration_ms,
                event.error,
                held_by,
                event.traceback,
                event.decided if isinstance(event.decided, dict) else None,
                event.reused_from,
                event.cached is True,
            )
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
