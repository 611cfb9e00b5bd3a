"""What `cascade run` says of a run before its tasks: its slowest finished tasks, its first
failures, how many tasks ``--state`` and ``--task`` pick, and what each task logged; each read
in SQL, so a run of any size costs a few queries, not its every task (rendered by
:mod:`._run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cascade.interfaces.reader import FINISHED_STATES, SHOWN, inert

from ...plumbing._context import UsageError
from ...plumbing._history_db import query
from ...rendering._render import STATE_STYLES

if TYPE_CHECKING:
    from cascade.history import (
        DecisionRecord,
        History,
        LogBatches,
        LogCount,
        RunDetail,
        RunSummary,
        TaskHistory,
    )

__all__ = ["SUMMARY_TASKS", "TASK_STATES", "RunOverview", "read_overview", "task_states"]

SUMMARY_TASKS = 5
"""The slowest tasks, and the first failures, a run's summary shows at most."""
TASK_STATES = tuple(STATE_STYLES)
"""The states a task is shown in, in the order its counts are."""


def task_states(values: list[str] | None) -> list[str] | None:
    """``--state``'s values (repeated, or comma lists, in any case) as the states they name,
    each once; ``None`` without any; :class:`UsageError` for a name that is no state."""
    if not values:
        return None
    named: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if name not in TASK_STATES:
                known = ", ".join(state.lower() for state in TASK_STATES)
                raise UsageError(f"unknown task state {part.strip()!r}: use one of {known}")
            if name not in named:
                named.append(name)
    return named


@dataclass(frozen=True)
class RunOverview:
    """A run's summary: its ``slowest`` finished tasks (longest first), its first
    ``failures`` (in the order they failed), and how many tasks the listing's filters pick
    (``matched``; every task without them), described in ``picked`` (``""``: none);
    ``logs``: per task id, the lines it logged and those dropped (empty: the run has none);
    ``held``: its first tasks held for a decision now; ``decisions``: its engine's answers to
    the decisions on its holds (``History.decisions``), in the order received; ``reused``:
    the tasks a rerun took stored results for instead of running, counted by their run."""

    slowest: list[TaskHistory]
    failures: list[TaskHistory]
    matched: int
    picked: str = ""
    logs: dict[str, LogCount] = field(default_factory=dict)
    held: list[TaskHistory] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    reused: dict[str, int] = field(default_factory=dict)
    """Per run its reused results came from, how many of its tasks took one
    (``History.reused``)."""
    log_batches: LogBatches | None = None
    """Its log batches as numbered by its engine (``History.log_batches``): those missing,
    whichever tasks' lines they held (``None``: it has no logs)."""

    def task_json(self, task: TaskHistory) -> dict[str, Any]:
        """A task's object of `cascade run --json`: ``TaskHistory.to_json`` with the lines it
        logged (``log_lines``), its engine dropped (``log_dropped``) and the history lacks
        (``log_lost``: :attr:`~cascade.history.LogCount.lost`)."""
        counted = self.logs.get(task.task_id)
        if counted is None:
            return {**task.to_json(), "log_lines": 0, "log_dropped": 0, "log_lost": 0}
        return {**task.to_json(), "log_lines": counted.lines, "log_dropped": counted.dropped,
                "log_lost": counted.lost}  # fmt: skip

    def to_json(self, summary: RunSummary, listed: int) -> dict[str, Any]:
        """The ``summary`` object of `cascade run --json`, ``listed`` tasks having been
        written: the run's tasks counted by state and in all, these tasks as ``tasks`` has
        them, how many more the filters pick than were listed (``--limit``), and its log
        batches (``log_batches``: ``stored``, ``last_seq``, ``missing``; ``null``: no logs)."""
        return {
            "counts": dict(summary.tasks),
            "total": sum(summary.tasks.values()),
            "slowest": [task.to_json() for task in self.slowest],
            "failures": [task.to_json() for task in self.failures],
            "held": [task.to_json() for task in self.held],
            "decisions": [record.to_json() for record in self.decisions],
            "reused": dict(self.reused),
            "log_batches": None if self.log_batches is None else self.log_batches.to_json(),
            "matched": self.matched,
            "more": max(0, self.matched - listed),
        }


def _picked(states: list[str] | None, name_glob: str | None) -> str:
    parts = []
    if states is not None:
        parts.append(", ".join(state.lower() for state in states))
    if name_glob is not None:
        parts.append(f"named {inert(name_glob, SHOWN['name'])}")
    return "; ".join(parts)


def read_overview(
    history: History, first: RunDetail, *, states: list[str] | None, name_glob: str | None
) -> RunOverview:
    """The summary of the run of ``first`` (its first page, whose counts are the run's);
    a count of the tasks picked is read only for a name glob (states alone: the counts)."""
    run_id = first.run.run_id
    counts = first.run.tasks
    slowest = query(
        lambda: history.run_tasks(
            run_id, order="longest", limit=SUMMARY_TASKS, states=FINISHED_STATES
        )
    )
    failures = query(
        lambda: history.run_tasks(run_id, order="earliest", limit=SUMMARY_TASKS, states=["FAILED"])
    )
    if name_glob is not None:
        matched = query(lambda: history.count_tasks(run_id, states=states, name_glob=name_glob))
    else:
        matched = sum(n for state, n in counts.items() if states is None or state in states)
    return RunOverview(
        slowest=[task for task in slowest if task.duration_ms > 0],  # 0 s says nothing
        failures=failures,
        matched=matched,
        picked=_picked(states, name_glob),
        logs=query(lambda: history.log_counts(run_id)),
        held=query(
            lambda: history.run_tasks(
                run_id, order="earliest", limit=SUMMARY_TASKS, states=["HELD"]
            )
        )
        if counts.get("HELD")
        else [],
        decisions=query(lambda: history.decisions(run_id)),
        reused=query(lambda: history.reused(run_id)) if first.run.rerun_of is not None else {},
        log_batches=query(lambda: history.log_batches(run_id)),
    )
