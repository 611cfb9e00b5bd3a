"""Per-task statistics kept as events are stored, so that `cascade tasks` stays fast at any size.

Every finished execution (a task event ``COMPLETED`` or ``FAILED`` the history did not have)
adds one to its task name's hour in ``task_rollup``, in the bucket its duration falls in:
buckets grow by 5 % (``BUCKET_RATIO``), so a percentile read from them is within 2.5 % of the
exact one. ``task_runs`` keeps, per run and task name, when the run first finished an execution
of it, and ``task_run_hours`` counts those per hour: the runs a task ran in. Each is written in
the batch's transaction, from the rows the insert really added, so copies never count twice,
whichever writer stored the first.

:func:`rollup_stats` reads them: a few thousand rows for a week of any number of events. Its
period starts at the hour ``since`` falls in. Up to ``EXACT_UP_TO`` finished executions in a
period, the exact statistics cost as little (:func:`exact_enough`).
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..records._records import TaskStats
from ..store._bulk import insert_rows
from ..store._schema import task_rollup, task_run_hours, task_runs

__all__ = [
    "BUCKET_RATIO",
    "EXACT_UP_TO",
    "add_executions",
    "bucket_of",
    "bucket_value",
    "exact_enough",
    "hour_of",
    "prune_rollup",
    "rollup_executions",
    "rollup_stats",
]

EXACT_UP_TO = 10_000
"""Finished executions in a period up to which :meth:`~cascade.history.History.tasks` computes
exactly (from every execution) by default."""
BUCKET_RATIO = 1.05
"""Each duration bucket's upper bound over its lower one."""
_SMALLEST = 0.01  # ms: bucket 0 holds every duration below it (and those that are no number)
_LAST = 1_000  # the bucket of every duration beyond 0.01 ms * 1.05**999 (~1.5e19 ms)
_LOG_RATIO = math.log(BUCKET_RATIO)
_HOUR = 3600.0


def hour_of(ts: float) -> float:
    """The start of the hour ``ts`` falls in (epoch seconds)."""
    return math.floor(ts / _HOUR) * _HOUR


def bucket_of(duration_ms: float) -> int:
    """The bucket of a duration: 0 below 0.01 ms, else 1 + log base 1.05 of its ratio to it."""
    if not duration_ms >= _SMALLEST:  # also NaN
        return 0
    if math.isinf(duration_ms):
        return _LAST
    return min(_LAST, 1 + int(math.log(duration_ms / _SMALLEST) / _LOG_RATIO))


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for: the geometric middle of its bounds (0 for bucket 0)."""
    if bucket <= 0:
        return 0.0
    return _SMALLEST * BUCKET_RATIO ** (bucket - 1) * math.sqrt(BUCKET_RATIO)


def _upsert_add(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows``, adding their counts to those of rows already there (the greatest
    ``max_ms``), in the order of their keys: two writers wait for each other, never deadlock."""
    if not rows:
        return
    rows.sort(key=lambda row: tuple(row[key] for key in keys))
    connection.execute(_adding(connection.dialect.name, table, tuple(keys)), rows)


@functools.cache
def _adding(dialect: str, table: sa.Table, keys: tuple[str, ...]) -> Any:
    """The upsert of :func:`_upsert_add` (made once: building it costs more than a batch's rows)."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(table)
    new, old = statement.excluded, table.c
    adds = {
        name: old[name] + new[name] for name in ("executions", "failures", "runs") if name in old
    }
    if "max_ms" in old:
        adds["max_ms"] = sa.case((new.max_ms > old.max_ms, new.max_ms), else_=old.max_ms)
    return statement.on_conflict_do_update(index_elements=list(keys), set_=adds)


def add_executions(connection: sa.Connection, finished: Iterable[Sequence[Any]]) -> None:
    """Add newly stored finished executions, ``(run_id, task_name, ts, state, duration_ms)``."""
    cells: dict[tuple[str, float, int], list[Any]] = {}
    firsts: dict[tuple[str, str], float] = {}
    for run_id, name, ts, state, duration_ms in finished:
        key = (name, hour_of(ts), bucket_of(duration_ms))
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0, 0, 0.0]
        cell[0] += 1
        cell[1] += state == "FAILED"
        if duration_ms == duration_ms:  # not NaN
            cell[2] = max(cell[2], duration_ms)
        pair = (run_id, name)
        firsts[pair] = min(ts, firsts.get(pair, ts))
    if not cells:
        return
    _upsert_add(
        connection,
        task_rollup,
        [
            {"task_name": n, "hour": h, "bucket": b, "executions": e, "failures": f, "max_ms": m}
            for (n, h, b), (e, f, m) in cells.items()
        ],
        ("task_name", "hour", "bucket"),
    )
    pairs = [
        {"run_id": run_id, "task_name": name, "first_at": ts}
        for (run_id, name), ts in sorted(firsts.items())
    ]
    hours: dict[tuple[str, float], int] = {}
    for name, first_at in insert_rows(connection, task_runs, pairs, ("task_name", "first_at")):
        hours[(name, hour_of(first_at))] = hours.get((name, hour_of(first_at)), 0) + 1
    _upsert_add(
        connection,
        task_run_hours,
        [{"task_name": n, "hour": h, "runs": r} for (n, h), r in hours.items()],
        ("task_name", "hour"),
    )


def _nearest_rank(buckets: list[tuple[int, int]], count: int, p: float, top: float) -> float:
    """The value at rank ceil(p * count) of sorted ``(bucket, executions)``, at most ``top``."""
    rank = max(1, math.ceil(p * count - 1e-9))
    seen = 0
    for bucket, executions in buckets:
        seen += executions
        if seen >= rank:
            return min(bucket_value(bucket), top)
    return top


def rollup_executions(connection: sa.Connection, since: float | None) -> int:
    """Finished executions in the rollup from the hour ``since`` falls in (all: ``None``)."""
    query = sa.select(sa.func.coalesce(sa.func.sum(task_rollup.c.executions), 0))
    if since is not None:
        query = query.where(task_rollup.c.hour >= hour_of(since))
    return int(connection.execute(query).scalar_one())


def exact_enough(connection: sa.Connection, since: float | None) -> bool:
    """Whether the period from ``since`` has few enough finished executions (``EXACT_UP_TO``)
    that per-task statistics are computed from every one rather than read from the rollup."""
    return rollup_executions(connection, since) <= EXACT_UP_TO


def rollup_stats(
    connection: sa.Connection, *, since: float | None, name_glob: str | None, like: str | None
) -> list[TaskStats]:
    """Per task name, from the rollup (``like``: a ``LIKE`` narrowing ``name_glob`` in SQL)."""
    tr, th = task_rollup, task_run_hours
    cells = sa.select(
        tr.c.task_name,
        tr.c.bucket,
        sa.func.sum(tr.c.executions),
        sa.func.sum(tr.c.failures),
        sa.func.max(tr.c.max_ms),
    ).group_by(tr.c.task_name, tr.c.bucket)
    runs = sa.select(th.c.task_name, sa.func.sum(th.c.runs)).group_by(th.c.task_name)
    if since is not None:
        cells = cells.where(tr.c.hour >= hour_of(since))
        runs = runs.where(th.c.hour >= hour_of(since))
    if like is not None:
        cells = cells.where(tr.c.task_name.like(like, "\\"))
        runs = runs.where(th.c.task_name.like(like, "\\"))
    per_name: dict[str, list[tuple[int, int, int, float]]] = {}
    for name, bucket, executions, failures, longest in connection.execute(cells):
        per_name.setdefault(name, []).append((bucket, int(executions), int(failures), longest))
    run_counts = {name: int(count) for name, count in connection.execute(runs)}
    stats = []
    for name in sorted(per_name):
        if name_glob is not None and not fnmatch.fnmatchcase(name, name_glob):
            continue
        rows = sorted(per_name[name])
        count = sum(row[1] for row in rows)
        longest = max(row[3] for row in rows)
        buckets = [(row[0], row[1]) for row in rows]
        stats.append(
            TaskStats(
                task_name=name,
                runs=run_counts.get(name, 0),
                executions=count,
                failures=sum(row[2] for row in rows),
                p50_ms=_nearest_rank(buckets, count, 0.50, longest),
                p95_ms=_nearest_rank(buckets, count, 0.95, longest),
                max_ms=longest,
                approximate=True,
            )
        )
    return stats


def prune_rollup(connection: sa.Connection, before: float, run_ids: Sequence[str]) -> int:
    """Delete the rollup's hours that ended before ``before`` and the pruned runs' pairs."""
    deleted = 0
    cutoff = hour_of(before)
    for table in (task_rollup, task_run_hours):
        deleted += connection.execute(sa.delete(table).where(table.c.hour < cutoff)).rowcount
    if run_ids:
        deleted += connection.execute(
            sa.delete(task_runs).where(task_runs.c.run_id.in_(run_ids))
        ).rowcount
    return deleted
