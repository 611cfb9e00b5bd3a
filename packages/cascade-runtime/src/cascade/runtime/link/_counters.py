"""A run's task counts and each task's latest event, kept from its events as they happen."""

from __future__ import annotations

from .._events import (
    Event,
    RunStarted,
    TaskCompleted,
    TaskEvent,
    TaskHeld,
    TaskMapped,
    TaskRunning,
)

__all__ = ["MAX_LISTED_ITERATIONS", "RunCounters"]

MAX_LISTED_ITERATIONS = 1000
"""The iterations of one loop a run's snapshot lists: the latest, those before them ended (the
history, which records them as they happen, keeps them all; the counts count them all)."""

_ENDED = frozenset(("COMPLETED", "FAILED", "SKIPPED", "CANCELLED"))


class RunCounters:
    """Task counts of one run, and each task's latest event, kept up to date from its events.

    ``running`` counts tasks in an attempt right now; ``blocked`` tasks held
    back by a constraint, or waiting for a worker of their executor (:class:`TaskQueued`)
    (:attr:`blocked_events`: the BLOCKED event of each);
    ``pending`` the tasks that have not finished and are neither running nor
    blocked (a task between two attempts among them); ``held`` those of the blocked that
    are held for a decision (:class:`TaskHeld`); ``cancelled`` the tasks the
    run stopped, which ``failed`` counts too (they are published as ``FAILED``).
    :attr:`latest` maps each task that has had an event to its latest one, :attr:`numbers`
    to that event's ``seq``: what a snapshot of the run lists (no object is made per event,
    so the run's garbage collector has no more to do), a loop's latest
    :data:`MAX_LISTED_ITERATIONS` iterations only (a loop of any length is listed in constant
    memory; :attr:`unlisted` counts those let go); :attr:`mapped` each map's own task to how
    many items it made, which its snapshot entry says whatever its latest state.
    """

    __slots__ = (
        "_blocked",
        "cancelled",
        "completed",
        "failed",
        "latest",
        "mapped",
        "numbers",
        "running",
        "skipped",
        "total",
        "unlisted",
    )

    def __init__(self) -> None:
        self.total = 0
        self.running = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.skipped = 0
        self._blocked: dict[str, TaskEvent] = {}
        self.latest: dict[str, TaskEvent] = {}
        self.numbers: dict[str, int] = {}
        self.mapped: dict[str, int] = {}
        self.unlisted = 0

    @property
    def blocked(self) -> int:
        """Tasks whose next attempt a constraint holds back."""
        return len(self._blocked)

    @property
    def blocked_events(self) -> list[TaskEvent]:
        """The BLOCKED event of each task blocked now: those held for a decision first, then
        the others, each the earliest first."""
        events = list(self._blocked.values())
        held = [event for event in events if isinstance(event, TaskHeld)]
        if not held:
            return events
        return held + [event for event in events if not isinstance(event, TaskHeld)]

    @property
    def held(self) -> int:
        """Tasks held for a decision (counted in :attr:`blocked` too)."""
        return sum(1 for event in self._blocked.values() if isinstance(event, TaskHeld))

    @property
    def pending(self) -> int:
        """Tasks not finished, not running and not blocked."""
        done = self.completed + self.failed + self.skipped
        return max(0, self.total - done - self.running - self.blocked)

    def update(self, event: Event, seq: int) -> None:
        """Count ``event``, the run's event number ``seq`` (a resource event counts nothing)."""
        kind = type(event)
        # an attempt's start and a task's plain end (nearly every event) come first
        if kind is TaskRunning:
            self.running += 1
            if self._blocked:
                self._blocked.pop(event.task_id, None)  # type: ignore[union-attr]
        elif kind is TaskCompleted and event.reused_from is None and event.decided is None:  # type: ignore[union-attr]
            self.running -= 1
            self.completed += 1
        elif isinstance(event, TaskEvent):
            self._update_task(event)
        else:
            if isinstance(event, RunStarted):
                self.total = event.task_count
            return
        task_id = event.task_id  # type: ignore[union-attr]
        latest = self.latest
        if "@" in task_id and task_id not in latest:
            self._iteration(task_id)
        latest[task_id] = event  # type: ignore[assignment]
        self.numbers[task_id] = seq

    def _iteration(self, task_id: str) -> None:
        """``task_id`` has its first event: a loop's iteration (``<loop>@<n>``, its loop a task
        of the run) lets go of the one :data:`MAX_LISTED_ITERATIONS` before it, ended."""
        loop, _, number = task_id.rpartition("@")
        if not number.isdigit() or loop not in self.latest:
            return
        before = int(number) - MAX_LISTED_ITERATIONS
        if before < 2:
            return
        old = f"{loop}@{before}"
        event = self.latest.get(old)
        if event is not None and event.state in _ENDED:
            del self.latest[old], self.numbers[old]
            self.unlisted += 1

    def _update_task(self, event: TaskEvent) -> None:
        """:meth:`update`'s counts of any other task event."""
        state = event.state
        latest = self.latest
        if state == "RUNNING":  # a map's own task: its items join the run
            self.running += 1
            self._blocked.pop(event.task_id, None)
            if isinstance(event, TaskMapped):
                self.total += event.items
                self.mapped[event.task_id] = event.items
        elif state == "COMPLETED":
            # completed by a decision (blocked, not running), reused or cached (it never
            # ran; a cached one may have been blocked): else it ran
            if event.decided is not None or (
                isinstance(event, TaskCompleted) and (event.reused_from is not None or event.cached)
            ):
                self._blocked.pop(event.task_id, None)
            else:
                self.running -= 1
            self.completed += 1
        elif state == "RETRYING":  # pending until its next attempt starts (or is blocked)
            self._ended_attempt(event.task_id)
        elif state == "FAILED":
            if self._blocked.pop(event.task_id, None) is None:  # else: held, not running
                before = latest.get(event.task_id)
                if before is not None and before.state == "RUNNING":  # else: never started
                    self.running -= 1
            self.failed += 1
        elif state == "SKIPPED":
            self._blocked.pop(event.task_id, None)
            before = latest.get(event.task_id)
            if before is not None and before.state == "RUNNING":  # a map: an item failed
                self.running -= 1
            self.skipped += 1
        elif state == "BLOCKED":
            if isinstance(event, TaskHeld):
                self._ended_attempt(event.task_id)  # its attempt failed
            self._blocked[event.task_id] = event
        elif state == "CANCELLED":
            before = latest.get(event.task_id)
            if before is not None and before.state == "RUNNING":
                self.running -= 1
            self._blocked.pop(event.task_id, None)
            self.failed += 1
            self.cancelled += 1

    def _ended_attempt(self, task_id: str) -> None:
        """An attempt of ``task_id`` failed: it ran, or it waited for a worker that never
        started it (a timeout), or its call could not be made (its resources)."""
        before = self.latest.get(task_id)
        if before is not None and before.state == "RUNNING":
            self.running -= 1
        else:
            self._blocked.pop(task_id, None)
