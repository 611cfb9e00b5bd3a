"""The "Needs a decision" list: the live runs' tasks held for a decision, the longest held first,
bounded (a fleet may hold many: the first :data:`MAX_HELD_SHOWN`, and how many there are).

Shared by ``/api/state`` and the streams' ``held`` part. The whole list is read once per
version of the model (only the live runs that count a held task are looked into), then
filtered by what the asker may see and marked with what they may decide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cascade.interfaces.reader import RunView, TaskView

if TYPE_CHECKING:
    from cascade.control.access import Among

    from ._model import DashboardModel

__all__ = ["MAX_HELD_SHOWN", "Decidable", "HeldIndex", "held_entry"]

MAX_HELD_SHOWN = 50
"""The held tasks the list shows at most (``total`` counts them all)."""

Decidable = Callable[[str, str, str], bool]
"""Whether the asker may decide on a task of (org, project, task name)."""


def held_entry(run: RunView, task: TaskView) -> dict[str, Any]:
    """One held task as the list shows it: its run, its id and name, the failed ``attempt``,
    its error, since when it is held, the hold's ``deadline`` and ``default``. Its traceback
    is in the run's detail (its task's ``traceback``)."""
    hold = task.hold
    return {
        "run_id": run.run_id,
        "org_id": run.org_id,
        "project_id": run.project_id,
        "source": run.source,
        "task_id": task.task_id,
        "name": task.name,
        "attempt": hold.attempt if hold is not None else None,
        "error": task.error,
        "since": task.since,
        "deadline": hold.deadline if hold is not None else None,
        "default": hold.default if hold is not None else None,
    }


class HeldIndex:
    """The held tasks of a model's live runs, read again once its version moved."""

    def __init__(self, model: DashboardModel) -> None:
        self.model = model
        self._version = -1
        self._held: list[tuple[RunView, TaskView]] = []

    def all(self) -> list[tuple[RunView, TaskView]]:
        """Every held task of a live run and its run, the longest held first."""
        model = self.model
        if model.version != self._version:
            self._version = model.version
            held = [
                (run, task)
                for run in model.state.runs.values()
                if not run.finished and run.count("HELD")
                for task in run.held_tasks()
            ]
            held.sort(key=lambda pair: (pair[1].since, pair[0].run_id, pair[1].task_id))
            self._held = held
        return self._held

    def listed(
        self,
        among: Among | None = None,
        decidable: Decidable | None = None,
        limit: int = MAX_HELD_SHOWN,
    ) -> dict[str, Any]:
        """``{"tasks": [...], "total": n}``: the first ``limit`` held tasks the asker may see
        (``among``: ``None``, all), each with ``decide``: whether they may decide on it
        (``decidable``; ``None``: nobody may)."""
        seen = [
            (run, task)
            for run, task in self.all()
            if among is None or (run.org_id, None) in among or (run.org_id, run.project_id) in among
        ]
        tasks = []
        for run, task in seen[:limit]:
            entry = held_entry(run, task)
            entry["decide"] = decidable is not None and decidable(
                run.org_id, run.project_id, task.name
            )
            tasks.append(entry)
        return {"tasks": tasks, "total": len(seen)}
