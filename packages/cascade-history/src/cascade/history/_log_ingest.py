"""Writing a transaction's log batches: each batch once (by its run and ``seq``), its lines in
bulk, its tasks' counts added up."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from ._bulk import insert_rows
from ._gaps import bounded_sum
from ._inserts import insert_for
from ._log_rows import LogRows
from ._schema import log_batches, log_lines, log_tasks

__all__ = ["store_logs"]

_COUNTS = ("lines", "dropped_rate", "dropped_budget", "dropped_queue")


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
                    "run_id": key[0], "task_id": task_id, "task_name": name,
                    "lines": 0, "dropped_rate": 0, "dropped_budget": 0, "dropped_queue": 0,
                    "last_at": at, "last_n": 0,
                }  # fmt: skip
            for column, count in zip(_COUNTS, counts, strict=True):
                task[column] += count
            task["last_at"] = max(task["last_at"], at)
            task["last_n"] = max(task["last_n"], last_n)
    insert_rows(connection, log_lines, lines, ())
    if tasks:  # a batch of no line and no drop (no engine sends one) counts nothing
        # in one order: two writers upserting the same tasks wait for each other, never deadlock
        upsert = _tasks_upsert(connection.dialect.name)
        connection.execute(upsert, [tasks[key] for key in sorted(tasks)])
    return len(taken)


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
