"""A run's loops folded: the iterations a loop (``cs.Jump``) ran, counted by their last state
under the loop's own task, with its latest iteration, so that a view shows one row where a
loop has run 1,000 iterations.

A task ``<loop>@<digits>`` is an iteration of the loop whose task id is ``<loop>`` when that
is a task of the same run (docs/protocol.md); :func:`~._task_filters.iteration_parts` tells it
in SQL, so a run's iterations are counted by one ``GROUP BY``, never read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..store._schema import task_events
from ._task_filters import iteration_parts, last_events

__all__ = ["LoopIterations", "loop_iterations_query"]


@dataclass(frozen=True, slots=True)
class LoopIterations:
    """One loop of a run and its iterations (the tasks ``<task_id>@2`` on): its ``task_id``
    and ``task_name``, how many ``iterations`` the history has of it (its own call not
    counted), those ``counts`` by their last state (``{"COMPLETED": 999, "FAILED": 1}``), and
    its ``latest`` iteration's task id (the highest numbered) and ``latest_state``."""

    task_id: str
    task_name: str
    iterations: int
    counts: dict[str, int] = field(default_factory=dict)
    latest: str = ""
    latest_state: str = ""

    @property
    def number(self) -> int:
        """The latest iteration's number (``7`` for ``counter-4@7``; the loop's call is 1)."""
        return int(self.latest.rpartition("@")[2] or 1)

    def to_json(self) -> dict[str, Any]:
        """This loop as a JSON object (``task_id``, ``task_name``, ``iterations``, ``counts``,
        ``latest``, ``latest_state``)."""
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "iterations": self.iterations,
            "counts": dict(self.counts),
            "latest": self.latest,
            "latest_state": self.latest_state,
        }


def loop_iterations_query(connection: sa.Connection, run_id: str) -> list[LoopIterations]:
    """The loops of the run ``run_id`` (its whole id) with iterations in the history, by task
    id, each with its iterations counted by their last state and its latest one: one
    ``GROUP BY`` over the iterations' last events, and one read of the loops' names."""
    te = task_events
    last = last_events((te.c.task_id, te.c.state), te.c.run_id == run_id, te.c.task_id.like("%@%"))
    iteration, loop_id, number = iteration_parts(last.c.task_id, run_id)
    picked = (
        sa.select(loop_id.label("loop_id"), number.label("number"), last.c.state)
        .where(last.c.rank == 1, iteration)
        .subquery()
    )
    rows = connection.execute(
        sa.select(
            picked.c.loop_id, picked.c.state, sa.func.count(), sa.func.max(picked.c.number)
        ).group_by(picked.c.loop_id, picked.c.state)
    ).all()
    if not rows:
        return []
    counts: dict[str, dict[str, int]] = {}
    latest: dict[str, tuple[int, str]] = {}
    for loop_task, state, count, highest in rows:
        counts.setdefault(loop_task, {})[state] = int(count)
        latest[loop_task] = max(latest.get(loop_task, (0, "")), (int(highest), state))
    names = dict(
        connection.execute(
            sa.select(te.c.task_id, sa.func.min(te.c.task_name))
            .where(te.c.run_id == run_id, te.c.task_id.in_(list(counts)))
            .group_by(te.c.task_id)
        ).all()
    )
    return [
        LoopIterations(
            loop_task,
            names.get(loop_task, ""),
            sum(by_state.values()),
            by_state,
            f"{loop_task}@{latest[loop_task][0]}",
            latest[loop_task][1],
        )
        for loop_task, by_state in sorted(counts.items())
    ]
