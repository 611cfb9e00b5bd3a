"""A run's timeline as the dashboard draws it: each task's time in each state (its last
attempts), bounded per task and per run."""

from __future__ import annotations

from dataclasses import dataclass, field

from cascade.interfaces.serving import RunOrigin
from cascade.reader import FINISHED_STATES, TaskView

from ._versions import TaskLog

__all__ = ["MAX_SEGMENTS_PER_RUN", "MAX_SEGMENTS_PER_TASK", "Segment", "Timeline"]

#: Segments kept per task (its last attempts), and per run in all.
MAX_SEGMENTS_PER_TASK = 32
MAX_SEGMENTS_PER_RUN = 20_000


@dataclass(slots=True)
class Segment:
    """A task's time in one state: ``start`` to ``end`` (``None`` while it lasts).

    ``outcome`` is the state it ended in, so a RUNNING segment can be drawn as the
    attempt it was: completed, failed or retried.
    """

    state: str
    start: float
    end: float | None = None
    outcome: str | None = None


@dataclass
class Timeline:
    """What the dashboard keeps of one run beside the model."""

    first_seen: float
    last_seen: float
    ended: float | None = None
    segments: int = 0
    truncated: int = 0
    tasks: dict[str, list[Segment]] = field(default_factory=dict)
    views: dict[str, TaskView] = field(default_factory=dict)  # the model drops a finished run's
    log: TaskLog = field(default_factory=lambda: TaskLog(0, 0))
    status: str = "Running"  # as last recorded: a change moves the run in the pages' order
    compacted: bool = False
    key: tuple[int, float, str] = (0, 0.0, "")  # its place in the pages' order (run_key)
    origin: RunOrigin | None = None  # as last recorded: a change may fold it into a line of work

    def record(self, task: TaskView, max_segments_per_run: int) -> None:
        """Draw ``task``'s latest state: close its open segment, open the next (at most
        :data:`MAX_SEGMENTS_PER_TASK` a task, ``max_segments_per_run`` in all: beyond, the
        run's timeline is ``truncated``)."""
        segments = self.tasks.get(task.task_id)
        if segments is not None:
            self.views[task.task_id] = task
        if segments and _drawn(segments[-1], task):
            return
        if segments is None:
            if self.segments >= max_segments_per_run:
                self.truncated += 1
                return
            segments = self.tasks[task.task_id] = []
            self.views[task.task_id] = task
        if segments and segments[-1].end is None:
            segments[-1].end = task.since
            segments[-1].outcome = task.state
        if task.state not in ("COMPLETED", "FAILED", "CANCELLED") or not segments:
            end = task.since if task.state in FINISHED_STATES else None
            if len(segments) >= MAX_SEGMENTS_PER_TASK:
                del segments[0]  # a task's last attempts are the ones worth drawing
            else:
                self.segments += 1
            segments.append(Segment(task.state, task.since, end, task.state if end else None))


def _drawn(last: Segment, task: TaskView) -> bool:
    """Whether ``last`` already shows the task's current state (the model kept it as it was)."""
    if last.end is None or last.outcome is None:
        return last.state == task.state and last.start == task.since
    return last.outcome == task.state and last.end == task.since
