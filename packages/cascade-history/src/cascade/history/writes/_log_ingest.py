"""Writing a transaction's log batches: each batch once (by its run and ``seq``), its lines in
bulk, its tasks' counts added up, and its run's batches counted with the highest number."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cascade.interfaces.logs import LogBatch

from .._received import Received
from ..store._bulk import insert_rows
from ..store._inserts import bounded_sum, insert_for
from ..store._schema import log_batches, log_lines, log_runs, log_tasks
from ._log_rows import LogRows

__all__ = ["stored_last_seqs", "store_logs"]

_COUNTS = ("lines", "dropped_rate", "dropped_budget", "dropped_queue")


def stored_last_seqs(connection: sa.Connection, batch: Sequence[Received]) -> dict[str, int]:
    """The highest log batch number stored of each run ``batch`` has log batches of (what a
    batch's number is bounded against: :class:`~._log_rows.LogRows`)."""
    ids = sorted(
        {
            item.message.run_id
            for item in batch
            if isinstance(item.message, LogBatch) and isinstance(item.message.run_id, str)
        }
    )
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        query = sa.select(log_runs.c.run_id, log_runs.c.last_seq).where(
            log_runs.c.run_id.in_(ids[start : start + 500])
        )
        found.update((run_id, last_seq) for run_id, last_seq in connection.execute(query))
    return found


def store_logs(connection: sa.Connection, logs: LogRows) -> int:
    """Write the batches of ``logs`` the history does not have yet; how many those were."""
    if not logs.batches:
        return 0
    taken = {
        (run_id, seq)
        for run_id, seq in insert_rows(connection, log_batches, logs.batches, ("run_id", "seq"))
    }
    if not taken:
        return 0
    lines: list[dict[str, Any]] = []
    tasks: dict[tuple[str, str], dict[str, Any]] = {}
    for row in logs.batches:
        key = (row["run_id"], row["seq"])
        if key not in taken:
            continue
        lines.extend(logs.lines[key])
        at = row["received_at"]
        for task_id, (name, *counts, last_n) in logs.tasks[key].items():
            task = tasks.get((key[0], task_id))
            if task is None:
                task = tasks[(key[0], task_id)] = {
                    "run_id": key[0],
                    "task_id": task_id,
                    "task_name": name,
                    "lines": 0,
                    "dropped_rate": 0,
                    "dropped_budget": 0,
                    "dropped_queue": 0,
                    "last_at": at,
                    "last_n": 0,
                }
            for column, count in zip(_COUNTS, counts, strict=True):
                task[column] += count
            task["last_at"] = max(task["last_at"], at)
            task["last_n"] = max(task["last_n"], last_n)
    insert_rows(connection, log_lines, lines, ())
    numbered: dict[str, dict[str, Any]] = {}
    for row in logs.batches:
        run_id, seq = row["run_id"], row["seq"]
        if (run_id, seq) not in taken:
            continue
        run = numbered.get(run_id)
        if run is None:
            run = numbered[run_id] = {
                "run_id": run_id,
                "batches": 0,
                "last_seq": 0,
                "last_at": row["received_at"],
            }
        run["batches"] += 1
        run["last_seq"] = max(run["last_seq"], seq)
        run["last_at"] = max(run["last_at"], row["received_at"])
    # in one order: two writers upserting the same runs wait for each other, never deadlock
    upsert = _runs_upsert(connection.dialect.name)
    connection.execute(upsert, [numbered[run_id] for run_id in sorted(numbered)])
    if tasks:  # a batch of no line and no drop (no engine sends one) counts nothing
        # in one order: two writers upserting the same tasks wait for each other, never deadlock
        upsert = _tasks_upsert(connection.dialect.name)
        connection.execute(upsert, [tasks[key] for key in sorted(tasks)])
    return len(taken)


@functools.cache
def _runs_upsert(dialect: str) -> Any:
    statement = insert_for(dialect)(log_runs)
    new, old = statement.excluded, log_runs.c
    return statement.on_conflict_do_update(
        index_elements=[old.run_id],
        set_={
            "batches": bounded_sum(old.batches, new.batches),
            "last_seq": sa.case((new.last_seq > old.last_seq, new.last_seq), else_=old.last_seq),
            "last_at": sa.case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
        },
    )


@functools.cache
def _tasks_upsert(dialect: str) -> Any:
    statement = insert_for(dialect)(log_tasks)
    new, old = statement.excluded, log_tasks.c
    return statement.on_conflict_do_update(
        index_elements=[old.run_id, old.task_id],
        set_={
            **{column: bounded_sum(old[column], new[column]) for column in _COUNTS},
            "last_at": sa.case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
            "last_n": sa.case((new.last_n > old.last_n, new.last_n), else_=old.last_n),
        },
    )
