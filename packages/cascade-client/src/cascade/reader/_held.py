"""The tasks held for a decision, fleet-wide: the one read that `cascade held` (and
`cascade retry|skip|fail --held`), the dashboard's "Needs a decision" list and the
``cascade_tasks_held`` metrics render.

A task is held while its last state is ``HELD`` (it failed under ``on_failure="hold"`` and
waits for a retry, a skip, a complete or a fail; or it is a gate, awaiting approval from its
start, with its prompt; a task held back by a constraint is
``BLOCKED``, no held task) in a run whose end has not arrived. Each is read as a plain value
(:class:`HeldTask`): what its run, its state and its hold said when it was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._model import ReaderModel

__all__ = ["HeldTask", "held_tasks"]


@dataclass(frozen=True, slots=True)
class HeldTask:
    """One task held for a decision: its run, itself, its hold, and what waits in its run.

    Texts are as its engine sent them (a view makes them inert); times are epoch seconds.
    """

    run_id: str
    org_id: str
    project_id: str
    source: str
    """The source its run is taken from: the engine a decision goes to."""
    task_id: str
    name: str
    error: str
    """Its failed attempt's error (``""``: none heard yet; a run's snapshot answer has it)."""
    since: float
    """When it was held: when the reader heard it; heard late (a snapshot answer, a
    heartbeat), when its engine said it was held."""
    attempt: int | None = None
    """The failed attempt held (``None``: its engine did not say)."""
    deadline: float | None = None
    """When its hold takes its default (``None``: its engine did not say)."""
    default: str | None = None
    """The decision taken at the deadline."""
    run_blocked: int | None = None
    """Its run's tasks blocked, as the run's last heartbeat or snapshot answer counts them
    (``None``: neither heard)."""
    run_pending: int | None = None
    """Its run's tasks pending, as the run's last heartbeat or snapshot answer counts them
    (``None``: neither heard)."""
    awaits_approval: bool = False
    """Whether it is a gate (its hold's ``kind`` is ``approval``): no attempt ran, it awaits
    a person's approval (complete), rejection (fail) or skip; a retry is refused."""
    prompt: str | None = None
    """A gate's prompt, what the person decides on (``None``: not a gate, or none sent)."""


def held_tasks(model: ReaderModel) -> list[HeldTask]:
    """Every task held for a decision in the runs of ``model`` whose end has not arrived, the
    longest held first (then by run id and task id: one order for every view)."""
    found = []
    for run in model.runs.values():
        if run.finished or not run.count("HELD"):  # most runs hold none: not looked into
            continue
        waiting = run.waiting()
        for task in run.held_tasks():
            hold = task.hold
            found.append(
                HeldTask(
                    run_id=run.run_id,
                    org_id=run.org_id,
                    project_id=run.project_id,
                    source=run.source,
                    task_id=task.task_id,
                    name=task.name,
                    error=task.error,
                    since=task.since,
                    attempt=None if hold is None else hold.attempt,
                    deadline=None if hold is None else hold.deadline,
                    default=None if hold is None else hold.default,
                    run_blocked=None if waiting is None else waiting[0],
                    run_pending=None if waiting is None else waiting[1],
                    awaits_approval=hold is not None and hold.awaits_approval,
                    prompt=None if hold is None else hold.prompt,
                )
            )
    found.sort(key=lambda held: (held.since, held.run_id, held.task_id))
    return found
