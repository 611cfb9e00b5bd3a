"""The state model of a live view: what the broker says about runs, engines and constraints.

:class:`WatchState` is the one place that turns received messages into state;
`cascade watch`, `cascade status` and any other view (a dashboard) render it
and never read messages themselves. It depends on :mod:`cascade.interfaces`
only (no rendering library), so it can be imported anywhere::

    state = WatchState(prefix=connector.topic_prefix)
    await connector.subscribe(telemetry_filter(prefix=prefix), state.apply)
    await connector.subscribe(status_filter(prefix), state.apply)
    await connector.subscribe(constraints_filter(prefix), state.apply)
    ...
    state.observe_connection(connector.is_connected)  # now and then
    state.prune()                                     # now and then
    for run in state.runs.values(): ...
    for engine in state.visible_engines(offline_max_age=3600): ...

Times are epoch seconds (``float``). An engine's :attr:`EngineView.last_seen`
comes from the timestamps its messages carry, never from when they arrived.
Memory is bounded: a finished run keeps its counts and a few failures, not
its tasks, and finished runs are forgotten beyond :attr:`WatchState.keep_runs`
or after :attr:`WatchState.keep_for` seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cascade.interfaces import (
    DEFAULT_PREFIX,
    Constraint,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    decode_constraint,
    decode_envelope,
    decode_status,
)

__all__ = [
    "DEFAULT_KEEP_FOR",
    "DEFAULT_KEEP_RUNS",
    "FINISHED_STATES",
    "LAST_TIMESTAMP",
    "ConnectionView",
    "EngineView",
    "RunView",
    "TaskView",
    "WatchState",
    "parse_timestamp",
]

FINISHED_STATES = ("COMPLETED", "FAILED", "SKIPPED")
"""Task states a task does not leave."""

LAST_TIMESTAMP = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
"""The last second of year 9999: PROTOCOL.md reads an expiry beyond it as no expiry."""

DEFAULT_KEEP_RUNS = 20
"""Finished runs a :class:`WatchState` keeps by default (the most recently finished)."""

DEFAULT_KEEP_FOR = 600.0
"""Seconds a :class:`WatchState` keeps a finished (or silent) run by default."""

_KEPT_FAILURES = 20  # failed tasks a finished run keeps, to show why it failed
_ACTIVE = ("RUNNING", "RETRYING", "BLOCKED")


def parse_timestamp(value: str | None) -> float | None:
    """Epoch seconds of a protocol timestamp (ISO 8601 with an offset), ``None`` if unusable.

    A timestamp without an offset is read as UTC; anything that is not a
    timestamp (older tools, hostile input) gives ``None``.
    """
    if not value:
        return None
    if value.endswith(("Z", "z")):  # fromisoformat reads a Z from Python 3.11 only
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    except (ValueError, TypeError, OverflowError, OSError):
        return None


@dataclass(slots=True)
class TaskView:
    """The latest known state of one task; ``since`` is when it entered that state."""

    task_id: str
    name: str
    state: str
    since: float
    duration_ms: float = 0.0
    error: str = ""
    ts: str = ""
    """The event's own time (ISO 8601): what a resent copy is told apart by."""


@dataclass
class RunView:
    """One run, as its telemetry describes it.

    While the run goes on, :attr:`tasks` holds every task seen; once it has
    finished, only its counts (:meth:`counts`) and up to 20 failed tasks remain.
    """

    run_id: str
    org_id: str
    project_id: str
    source: str
    status: str = "Running"
    error: str = ""
    tasks: dict[str, TaskView] = field(default_factory=dict)
    heartbeat: Heartbeat | None = None
    planned: int | None = None
    """The task count the engine announced at the start (``None``: an engine that does not)."""
    last_heard: float = 0.0
    """When this view last received a message of the run (the state's clock)."""
    finished_at: float | None = None
    """When the run's end arrived (the state's clock), ``None`` while it goes on."""
    _counts: Counter[str] = field(default_factory=Counter, repr=False)
    _total_mark: int = field(default=0, repr=False)
    _finished_mark: int = field(default=0, repr=False)
    _progress_mark: float = field(default=0.0, repr=False)
    heartbeat_ts: str = ""
    """The ``ts`` of the heartbeat shown: an older one (resent or late) is ignored."""

    @property
    def finished(self) -> bool:
        """Whether the run's end (``ENGINE_STOPPED``) has arrived."""
        return self.finished_at is not None

    def counts(self) -> Counter[str]:
        """How many tasks seen are in each state."""
        return Counter(+self._counts)

    @property
    def total_tasks(self) -> int | None:
        """How many tasks the run has, ``None`` while that is not known.

        Known from the start when the engine announced it; otherwise from the
        first heartbeat, or from the tasks seen once the run has finished.
        Never decreases.
        """
        known = self.planned
        beat = self.heartbeat
        if beat is not None:
            counted = beat.running + beat.completed + beat.failed + beat.skipped + beat.blocked
            known = max(known or 0, counted + beat.pending)
        if known is None and self.finished:
            known = sum(self._counts.values())
        if known is None:
            return None
        self._total_mark = max(self._total_mark, known, self._finished_mark)
        return self._total_mark

    @property
    def finished_tasks(self) -> int:
        """Tasks that will not run again: completed, failed or skipped. Never decreases.

        The larger of the tasks seen finishing and the heartbeat's count, so a
        view attached mid-run is not behind.
        """
        seen = sum(self._counts[state] for state in FINISHED_STATES)
        beat = self.heartbeat
        if beat is not None:
            seen = max(seen, beat.completed + beat.failed + beat.skipped)
        self._finished_mark = max(self._finished_mark, seen)
        return self._finished_mark

    @property
    def progress(self) -> float | None:
        """The finished fraction in [0, 1], ``None`` while the total is unknown. Never decreases.

        Messages that contradict each other (a heartbeat counting more tasks
        than the run announced) cannot move it back.
        """
        done = self.finished_tasks
        total = self.total_tasks
        if total is None:
            return None
        fraction = 1.0 if total == 0 else min(1.0, done / total)
        self._progress_mark = max(self._progress_mark, fraction)
        return self._progress_mark

    def active_tasks(self) -> list[TaskView]:
        """Tasks running, retrying or blocked, the longest in that state first."""
        return sorted(
            (task for task in self.tasks.values() if task.state in _ACTIVE),
            key=lambda task: task.since,
        )

    def failed_tasks(self) -> list[TaskView]:
        """Failed tasks seen (at most 20 once the run has finished)."""
        return [task for task in self.tasks.values() if task.state == "FAILED"]

    def set_task(self, task: TaskView) -> None:
        """Record a task's newest state, keeping the counts by state."""
        previous = self.tasks.get(task.task_id)
        if previous is not None:
            self._counts[previous.state] -= 1
        self._counts[task.state] += 1
        self.tasks[task.task_id] = task

    def finish(self, now: float) -> None:
        """Keep the counts and a few failures; drop the tasks."""
        self.finished_at = now
        self.finished_tasks  # noqa: B018 (records the high-water marks before tasks go)
        self.progress  # noqa: B018
        failures = self.failed_tasks()[:_KEPT_FAILURES]
        self.tasks = {task.task_id: task for task in failures}


@dataclass
class EngineView:
    """A source's presence and when it was last heard from.

    ``status`` is ``None`` for a source seen only through its telemetry (no
    retained status). ``last_seen`` is the latest timestamp carried by any of
    its messages (status, telemetry, heartbeat), ``None`` if none carried one.
    """

    source: str
    status: StatusMessage | None
    last_seen: float | None = None
    conflict_session: int | None = None
    """Another session announced under the same source id while this one is
    online (two engines share the id), when it can be told: the connector said
    so in its ``online`` (``conflict_session``), or an ``online`` of an older
    session came after a newer one's."""

    @property
    def conflict(self) -> bool:
        """Whether two live engines are known to share this source id."""
        return self.conflict_session is not None

    @property
    def online(self) -> bool:
        """Whether its current status is ``online`` (unknown counts as online)."""
        return self.status is None or self.status.status == "online"

    def heard(self, ts: float | None) -> None:
        """Record a message stamped ``ts``: :attr:`last_seen` only moves forward."""
        if ts is not None and (self.last_seen is None or ts > self.last_seen):
            self.last_seen = ts


@dataclass
class ConnectionView:
    """The view's own broker connection, as last observed.

    ``since`` is when it last changed (the state's clock); ``losses`` counts
    the times it went down after having been up.
    """

    connected: bool = True
    since: float | None = None
    losses: int = 0


@dataclass
class WatchState:
    """Folds telemetry, status and constraint messages into runs, engines and constraints.

    Feed it every received message with :meth:`apply` (it is a subscription
    callback). A stale will (an ``offline`` from an older session than the
    ``online`` already seen) is ignored. Messages that do not follow the
    protocol are counted in :attr:`rejected` and change nothing.

    ``clock`` is wall time (epoch seconds); ``keep_runs`` and ``keep_for``
    bound what finished runs are kept (``None``: no bound), see :meth:`prune`.

    Telemetry arrives at least once: after a lost connection an engine sends
    again what the broker had not confirmed, so an event may come twice, the
    copy after newer events. A task event is applied only if it is newer
    than the task's current state (its ``ts``), or the same time with another
    state: a copy changes nothing and a task never steps back to an older
    state; a heartbeat older than the one shown is ignored.
    """

    prefix: str = DEFAULT_PREFIX
    clock: Callable[[], float] = time.time
    keep_runs: int | None = DEFAULT_KEEP_RUNS
    keep_for: float | None = DEFAULT_KEEP_FOR
    runs: dict[str, RunView] = field(default_factory=dict)
    engines: dict[str, EngineView] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    connection: ConnectionView = field(default_factory=ConnectionView)
    rejected: int = 0
    forgotten_runs: int = 0
    """Runs dropped by :meth:`prune` so far."""

    def apply(self, message: Message) -> None:
        """Fold one received message into the state."""
        kind, _, rest = message.topic.removeprefix(self.prefix + "/").partition("/")
        try:
            if kind == "constraints":
                self._apply_constraint(message)
            elif kind == "status":
                self._apply_status(message)
            elif kind == "telemetry" and rest.endswith(("/events", "/heartbeat")):
                self._apply_envelope(decode_envelope(message.payload), message.retain)
        except InvalidMessageError:
            self.rejected += 1

    def _stamp(self, ts: str | None, retained: bool) -> float | None:
        """When a message was sent: its timestamp, else now for a live one, else unknown."""
        parsed = parse_timestamp(ts)
        if parsed is None and not retained:
            return self.clock()
        return parsed

    def _apply_constraint(self, message: Message) -> None:
        if not message.payload:
            self.constraints.pop(message.topic, None)
        else:
            self.constraints[message.topic] = decode_constraint(message.payload)

    def _apply_status(self, message: Message) -> None:
        source = message.topic.rsplit("/", 1)[-1]
        if not message.payload:  # a cleared retained status (`cascade forget`)
            self.engines.pop(source, None)
            return
        status = decode_status(message.payload)
        source = status.source or source
        known = self.engines.get(source)
        if known is None:
            known = self.engines[source] = EngineView(source, status)
            known.conflict_session = _conflict(status, None)
        elif known.status is None or status.supersedes(known.status):
            known.conflict_session = _conflict(status, known)
            known.status = status
        known.heard(self._stamp(status.ts, message.retain))

    def _apply_envelope(self, envelope: Envelope, retained: bool) -> None:
        now = self.clock()
        engine = self.engines.get(envelope.source)
        if engine is None:
            engine = self.engines[envelope.source] = EngineView(envelope.source, None)
        engine.heard(self._stamp(envelope.ts, retained))
        run = self.runs.get(envelope.run_id)
        if run is None:
            run = RunView(envelope.run_id, envelope.org_id, envelope.project_id, envelope.source)
            self.runs[envelope.run_id] = run
        run.last_heard = now
        body = envelope.body
        if isinstance(body, Heartbeat):
            if envelope.ts >= run.heartbeat_ts:  # ISO 8601 in UTC: text order is time order
                run.heartbeat, run.heartbeat_ts = body, envelope.ts
        elif isinstance(body, TaskStateEvent):
            if run.finished:
                return  # a straggler or a copy after the run's end: its counts are final
            task = run.tasks.get(body.task_id)
            if task is not None and (
                envelope.ts < task.ts or (envelope.ts == task.ts and body.state == task.state)
            ):
                return  # a copy resent after a lost connection, or older than what is shown
            run.set_task(
                TaskView(
                    body.task_id,
                    body.task_name,
                    body.state,
                    now,
                    body.duration_ms,
                    body.error,
                    envelope.ts,
                )
            )
        elif isinstance(body, LifecycleEvent) and not run.finished:
            if body.event == "ENGINE_STARTED":
                run.status = "Running"
                if body.tasks is not None:
                    run.planned = body.tasks
            else:
                run.status = body.status or "Finished"
                run.error = body.error or ""
                run.finish(now)
                self.prune(now)

    def observe_connection(self, connected: bool, now: float | None = None) -> None:
        """Record whether the view's broker connection is up (call it now and then)."""
        now = self.clock() if now is None else now
        connection = self.connection
        if connection.since is None:
            connection.connected, connection.since = connected, now
        elif connected != connection.connected:
            if not connected:
                connection.losses += 1
            connection.connected, connection.since = connected, now

    def prune(self, now: float | None = None) -> int:
        """Forget runs beyond the bounds; returns how many were forgotten.

        A finished run goes once more than ``keep_runs`` runs finished after
        it, or ``keep_for`` seconds after it finished. A run not heard from
        for ``keep_for`` seconds (its engine died before its end) goes too.
        """
        now = self.clock() if now is None else now
        doomed: list[str] = []
        if self.keep_for is not None:
            horizon = now - self.keep_for
            doomed = [
                run_id
                for run_id, run in self.runs.items()
                if (run.finished_at if run.finished_at is not None else run.last_heard) < horizon
            ]
        if self.keep_runs is not None:
            finished = [run for run in self.runs.values() if run.finished_at is not None]
            excess = len(finished) - self.keep_runs
            if excess > 0:
                finished.sort(key=lambda run: run.finished_at or 0.0)
                doomed.extend(run.run_id for run in finished[:excess])
        forgotten = 0
        for run_id in doomed:
            if self.runs.pop(run_id, None) is not None:
                forgotten += 1
        self.forgotten_runs += forgotten
        return forgotten

    def visible_engines(
        self, offline_max_age: float | None = None, now: float | None = None
    ) -> tuple[list[EngineView], int]:
        """Engines sorted by source, and how many were left out.

        Offline engines last heard from more than ``offline_max_age`` seconds
        ago (or never, with a timestamp) are left out; ``None`` keeps every engine.
        """
        now = self.clock() if now is None else now
        shown: list[EngineView] = []
        hidden = 0
        for engine in sorted(self.engines.values(), key=lambda e: e.source):
            stale = (
                offline_max_age is not None
                and not engine.online
                and (engine.last_seen is None or now - engine.last_seen > offline_max_age)
            )
            if stale:
                hidden += 1
            else:
                shown.append(engine)
        return shown, hidden

    def active_constraints(self) -> list[tuple[str, Constraint]]:
        """The constraints in force now (expired ones left out), by topic."""
        now = self.clock()
        return [
            (topic, c)
            for topic, c in sorted(self.constraints.items())
            if c.expires_at is None or c.expires_at > now
        ]


def _conflict(status: StatusMessage, known: EngineView | None) -> int | None:
    """The other session sharing the source id that ``status`` reveals, if any."""
    if status.status != "online":
        return None
    if status.conflict_session is not None:
        return status.conflict_session
    before = known.status if known is not None else None
    if (
        before is not None
        and before.status == "online"
        and before.session is not None
        and status.session is not None
        and status.session < before.session  # sessions of one connector only rise
    ):
        return before.session
    return None
