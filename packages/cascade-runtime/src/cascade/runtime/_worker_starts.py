"""When the attempts of a run that waited for a worker started: said a look at a time.

A plain-function task's attempt handed to an executor whose workers are all busy waits in its
queue (:attr:`Attempt.waiting <.executors._executor.Attempt>`); the worker that starts it sets
its ``began_at``, and nothing else: no call from the worker's thread to the run's loop, which
would cost a wake-up of the loop an attempt. The run looks every :data:`LOOK` seconds while
some wait: one a worker started is ``RUNNING`` (stamped when it started), one still waiting
``BLOCKED`` by its ``queued`` hold (:class:`~._events.TaskQueued`, once, stamped when it was
handed over). An attempt that ends before a look says its ``RUNNING`` as it ends. So a wait
shorter than a look says no queued state: a task is pending until its ``RUNNING``, which is
when it started, whenever it is said.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, TypeAlias, cast

from cascade.interfaces import Hold
from cascade.interfaces.commands import Decided

if TYPE_CHECKING:
    from ._task_states import TaskStates
    from .executors._executor import Attempt

__all__ = ["LOOK", "WorkerStarts"]

LOOK = 0.01
"""Seconds between two looks at a run's waiting attempts (only while some wait)."""


_Wait: TypeAlias = "tuple[int, Decided | None, float]"
"""An attempt waiting for a worker: its number, the decision it comes of, and since when
(epoch seconds)."""


class WorkerStarts:
    """One run's attempts that waited for a worker, until each has been said ``RUNNING`` or
    has ended."""

    __slots__ = ("_look", "_tasks", "loop", "said", "waiting")

    def __init__(self, tasks: TaskStates, loop: asyncio.AbstractEventLoop) -> None:
        self._tasks = tasks
        self.loop = loop
        self.waiting: dict[Attempt, _Wait] = {}
        self.said: set[Attempt] = set()  # those of them said queued
        self._look: asyncio.TimerHandle | None = None

    def waits(self, handed: Attempt, attempt: int, decided: Decided | None) -> None:
        """``handed`` (its task's ``attempt``) waits for a worker of its executor."""
        self.waiting[handed] = (attempt, decided, time.time())
        if self._look is None:
            self._look = self.loop.call_later(LOOK, self._looked)

    def ended(self, handed: Attempt) -> float | None:
        """``handed``, which waited, has ended (or was given up on): its ``RUNNING`` if a
        worker started it and it was not said yet; when it started (``perf_counter``), if it
        did."""
        wait = self.waiting.pop(handed, None)
        began = handed.began_at
        if wait is not None:
            self.said.discard(handed)
            if began is not None:
                self._running(handed, wait, began)
        return began

    @staticmethod
    def began(handed: Attempt) -> bool:
        """Whether a worker started ``handed`` (one that did not wait started when taken)."""
        return handed.waiting is None or handed.began_at is not None

    def _looked(self) -> None:
        self._look = None
        waiting, said = self.waiting, self.said
        for handed, wait in list(waiting.items()):
            began = handed.began_at
            if began is not None:
                del waiting[handed]
                said.discard(handed)
                self._running(handed, wait, began)
            elif handed not in said:
                said.add(handed)
                self._tasks.queued(handed.node.lazy, wait[0], cast(Hold, handed.waiting), wait[2])
        if waiting:
            self._look = self.loop.call_later(LOOK, self._looked)

    def _running(self, handed: Attempt, wait: _Wait, began: float) -> None:
        at = max(wait[2], time.time() - (time.perf_counter() - began))
        self._tasks.started(handed.node.lazy, wait[0], wait[1], at)
