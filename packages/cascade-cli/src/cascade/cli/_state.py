"""What the broker says about runs, engines and constraints, folded into one view."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cascade.interfaces import (
    DEFAULT_PREFIX,
    Constraint,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    Message,
    StatusMessage,
    TaskStateEvent,
    decode_constraint,
    decode_envelope,
    decode_status,
)

__all__ = ["EngineView", "RunView", "TaskView", "WatchState"]

FINISHED_STATES = ("COMPLETED", "FAILED", "SKIPPED")


@dataclass
class TaskView:
    """The latest known state of one task."""

    task_id: str
    name: str
    state: str
    since: float
    duration_ms: float = 0.0
    error: str = ""


@dataclass
class RunView:
    """One run, as its telemetry describes it."""

    run_id: str
    org_id: str
    project_id: str
    source: str
    status: str = "Running"
    error: str = ""
    tasks: dict[str, TaskView] = field(default_factory=dict)
    heartbeat: Heartbeat | None = None
    heartbeat_ts: str = ""
    # (task id or "", state or lifecycle event, ts) of every event applied: a resent copy
    # (telemetry is at least once) is recognised and changes nothing
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def counts(self) -> Counter[str]:
        """How many tasks are in each state."""
        return Counter(task.state for task in self.tasks.values())

    @property
    def total_tasks(self) -> int:
        """Tasks in the run: those seen so far, or the heartbeat's count when it knows more."""
        seen = len(self.tasks)
        beat = self.heartbeat
        if beat is None:
            return seen
        counted = beat.running + beat.completed + beat.failed + beat.skipped + beat.blocked
        return max(seen, counted + beat.pending)

    @property
    def finished_tasks(self) -> int:
        """Tasks that will not run again: completed, failed or skipped."""
        counts = self.counts()
        return sum(counts[state] for state in FINISHED_STATES)


@dataclass
class EngineView:
    """A source's presence: its current status and when it was last heard of."""

    source: str
    status: StatusMessage
    last_seen: float


@dataclass
class WatchState:
    """Folds telemetry, status and constraint messages into runs, engines and constraints.

    A stale will (an ``offline`` from an older session than the ``online``
    already seen) is ignored. Messages that do not follow the protocol are
    counted in :attr:`rejected` and change nothing.

    Telemetry arrives at least once: after a lost connection an engine sends
    again what the broker had not confirmed, so an event may come twice, the
    copy after newer events. An event is known by its run, task, state (or
    lifecycle event) and ``ts``: a copy of one already applied changes
    nothing, so a task never steps back to an older state; a heartbeat older
    than the one shown is ignored.
    """

    prefix: str = DEFAULT_PREFIX
    clock: Callable[[], float] = time.time
    runs: dict[str, RunView] = field(default_factory=dict)
    engines: dict[str, EngineView] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    rejected: int = 0

    def apply(self, message: Message) -> None:
        """Fold one received message into the view."""
        kind, _, rest = message.topic.removeprefix(self.prefix + "/").partition("/")
        try:
            if kind == "constraints":
                self._apply_constraint(message)
            elif kind == "status":
                self._apply_status(message)
            elif kind == "telemetry" and rest.endswith(("/events", "/heartbeat")):
                self._apply_envelope(decode_envelope(message.payload))
        except InvalidMessageError:
            self.rejected += 1

    def _apply_constraint(self, message: Message) -> None:
        if not message.payload:
            self.constraints.pop(message.topic, None)
        else:
            self.constraints[message.topic] = decode_constraint(message.payload)

    def _apply_status(self, message: Message) -> None:
        status = decode_status(message.payload)
        source = status.source or message.topic.rsplit("/", 1)[-1]
        known = self.engines.get(source)
        if known is None or status.supersedes(known.status):
            self.engines[source] = EngineView(source, status, self.clock())
        else:
            known.last_seen = self.clock()

    def _apply_envelope(self, envelope: Envelope) -> None:
        run = self.runs.get(envelope.run_id)
        if run is None:
            run = RunView(envelope.run_id, envelope.org_id, envelope.project_id, envelope.source)
            self.runs[envelope.run_id] = run
        body = envelope.body
        if isinstance(body, Heartbeat):
            if envelope.ts >= run.heartbeat_ts:  # ISO 8601 in UTC: text order is time order
                run.heartbeat, run.heartbeat_ts = body, envelope.ts
            return
        key = (
            (body.task_id, body.state, envelope.ts)
            if isinstance(body, TaskStateEvent)
            else ("", body.event, envelope.ts)
        )
        if key in run.seen:
            return  # a copy resent after a lost connection
        run.seen.add(key)
        if isinstance(body, TaskStateEvent):
            task = run.tasks.get(body.task_id)
            if task is None or task.state != body.state:
                run.tasks[body.task_id] = TaskView(
                    body.task_id,
                    body.task_name,
                    body.state,
                    self.clock(),
                    body.duration_ms,
                    body.error,
                )
        elif body.event == "ENGINE_STARTED":
            run.status = "Running"
        else:
            run.status = body.status or "Finished"
            run.error = body.error or ""

    def active_constraints(self) -> list[tuple[str, Constraint]]:
        """The constraints in force now (expired ones left out), by topic."""
        now = self.clock()
        return [
            (topic, c)
            for topic, c in sorted(self.constraints.items())
            if c.expires_at is None or c.expires_at > now
        ]
