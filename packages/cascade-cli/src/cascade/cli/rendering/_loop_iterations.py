"""A loop's iterations as views fold them: a task ``<loop>@<digits>`` is an iteration of the
loop whose task id is ``<loop>`` when that is a task of the same run (docs/protocol.md); a
task id that a user's task name put an ``@`` in is none, as its ``<loop>`` is no task."""

from __future__ import annotations

import re
from collections.abc import Container

__all__ = ["loop_of", "number_of"]

_ITERATION = re.compile(r"(.*)@([0-9]+)", re.DOTALL)


def loop_of(task_id: str, run_tasks: Container[str]) -> str | None:
    """The task id of the loop whose iteration ``task_id`` is (``counter-4`` for
    ``counter-4@7`` when ``counter-4`` is in ``run_tasks``, the run's task ids); ``None``: it
    is no loop's iteration."""
    found = _ITERATION.fullmatch(task_id)
    return found[1] if found is not None and found[1] in run_tasks else None


def number_of(task_id: str) -> int:
    """An iteration's number (``7`` for ``counter-4@7``; 1: the loop's own call)."""
    found = _ITERATION.fullmatch(task_id)
    return 1 if found is None else int(found[2])
