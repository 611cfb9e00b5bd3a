"""Simulated engines: the messages N engines' runs would publish, built with the public schemas.

No I/O here: :class:`SimulatedEngine` only makes ``(topic, payload, qos, retain)`` tuples
(:data:`Outgoing`) that a fleet worker (``_fleet_worker``) publishes; its runs follow
docs/protocol.md as ``cascade.runtime`` would send them (seq numbers, heartbeats, presence,
the engine's summary).
"""

from __future__ import annotations

import random
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TypeAlias

import msgspec

from cascade.interfaces import (
    DEFAULT_PREFIX,
    Envelope,
    Heartbeat,
    Hold,
    LifecycleEvent,
    StatusMessage,
    TaskStateEvent,
    encode_payload,
    events_topic,
    heartbeat_topic,
    status_topic,
)
from cascade.interfaces.summaries import SummaryRun, TaskTally, summary_messages
from cascade.interfaces.wire import BlockedTask, TaskState

from ._fleet_summaries import SummaryBook

__all__ = ["TASK_NAMES", "FleetSettings", "Outgoing", "SimulatedEngine"]

Outgoing: TypeAlias = "tuple[str, bytes, int, bool]"
"""A message to publish: topic, payload, QoS, retain."""

TASK_NAMES = ("extract", "fetch", "validate", "transform", "enrich", "load", "report")
"""The names a simulated run's tasks take, in turn (``fetch-3`` is task 3, named ``fetch``)."""
# The one hold a simulated BLOCKED task names (no constraint is published: it is a simulation).
_HOLD = Hold(type="pause", scope="task:load", reason="simulated hold", issued_by="fleet-simulator")
_MAX_BLOCKED = 2  # tasks of one run blocked at once, at most


def _fleet_name() -> str:
    return f"fleet-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class FleetSettings:
    """What a simulated fleet is: its broker, size, pace and the shape of its runs.

    ``rate`` is the task and run events (numbered, on ``.../events``) the whole fleet
    publishes a second; heartbeats (every ``heartbeat_interval`` per engine with a run) and
    statuses come on top. Engines are split among ``processes`` worker processes, each
    with one MQTT connection. Each engine runs one run of ``tasks_per_run`` tasks at a
    time, ``concurrency`` of them at once; a task fails with probability ``fail_ratio`` and
    blocks before it starts with probability ``block_ratio``. ``name`` (unique per fleet
    by default) is the project id of every run and the start of every source id
    (``{name}-00042``), so that a reader can tell this fleet apart on a shared broker.
    """

    host: str
    port: int
    engines: int = 10_000
    rate: float = 20_000.0
    processes: int = 2
    tasks_per_run: int = 20
    concurrency: int = 4
    fail_ratio: float = 0.05
    block_ratio: float = 0.05
    heartbeat_interval: float = 5.0
    prefix: str = DEFAULT_PREFIX
    org_id: str = "fleet"
    name: str = field(default_factory=_fleet_name)
    seed: int | None = None
    without_summaries: float = 0.0
    """The share of the engines that send no summary (as the existing tools, or engines
    started with ``summaries=False``), spread evenly over the fleet: 0.1, every tenth."""
    beats_within: float | None = None
    """Seconds from the runs' start within which every engine's first heartbeat (and the
    summary that goes with it) falls, each engine's at a random moment, the next ones every
    ``heartbeat_interval`` after: 1.0, a fleet started within a second, whose engines beat
    together, thousands in a second then none for four. ``None``: spread evenly over the
    interval, engine after engine."""

    def __post_init__(self) -> None:
        if self.engines < 1 or self.processes < 1 or self.tasks_per_run < 1:
            raise ValueError("engines, processes and tasks_per_run must be at least 1")
        if self.processes > self.engines:
            raise ValueError(f"{self.processes} processes for {self.engines} engines: too many")
        if self.rate <= 0 or self.concurrency < 1 or self.heartbeat_interval <= 0:
            raise ValueError("rate, concurrency and heartbeat_interval must be positive")
        if not 0.0 <= self.without_summaries <= 1.0:
            raise ValueError("without_summaries is a share of the engines, from 0 to 1")
        if self.beats_within is not None and not 0 < self.beats_within <= self.heartbeat_interval:
            raise ValueError("beats_within is seconds, more than 0, up to heartbeat_interval")

    def summarises(self, index: int) -> bool:
        """Whether engine ``index`` sends summaries (see :attr:`without_summaries`)."""
        share = self.without_summaries
        return int((index + 1) * share) == int(index * share)

    @property
    def project_id(self) -> str:
        """Every run's project: the fleet's name (``cascade watch --project NAME``)."""
        return self.name

    def source(self, index: int) -> str:
        """The source id of engine ``index`` (from 0)."""
        return f"{self.name}-{index:05d}"

    def sources(self) -> list[str]:
        """Every engine's source id."""
        return [self.source(index) for index in range(self.engines)]


class SimulatedEngine:
    """One engine of the fleet: its presence and, one after another, its runs.

    ``tally`` counts the events it makes, by task state or run event (``ENGINE_STARTED``),
    shared by the engines of a worker; :attr:`kinds` counts this engine's alone, by task
    state as a reader shows it (``CANCELLED`` for a cancelled task), ``ENGINE_STARTED``,
    and each run's end by outcome (``Succeeded``, ``Failed``, or ``Cancelled`` for a run
    failed by a cancel): the truth its last summary must agree with.

    :meth:`step` makes the engine's next event: a run's start (``ENGINE_STARTED`` with its
    task count), a task blocking (``held_by``), starting, completing or failing, or the
    run's end (``ENGINE_STOPPED``, ``Failed`` with the first failure's error if a task
    failed); the next step starts a new run. Events are numbered per run from 1 (``seq``).
    Task states and heartbeats go at QoS 0, run lifecycle and statuses at QoS 1, as an
    engine sends them.

    :meth:`summary` is its retained summary as it stands (:attr:`book` keeps what it counts
    beyond the live run); :attr:`summary_wanted` says a run has just started or ended, when
    an engine publishes one (the worker paces them, ``_fleet_summaries.SummaryPacer``).
    """

    def __init__(
        self,
        settings: FleetSettings,
        index: int,
        session: int,
        rng: random.Random,
        tally: Counter[str],
    ) -> None:
        self.settings = settings
        self._tally = tally  # events sent, by state (task) or event (run), shared by a worker
        self.source = settings.source(index)
        self.session = session
        self._rng = rng
        self._status_topic = status_topic(self.source, settings.prefix)
        self.kinds: Counter[str] = Counter()
        self.book = SummaryBook()
        self.summarises = settings.summarises(index)
        """Whether it sends summaries (:meth:`FleetSettings.summarises`)."""
        self.summary_wanted = False
        self._started = ""  # the live run's start (ISO)
        self.run_id: str | None = None
        self._events_topic = self._heartbeat_topic = ""
        self.seq = 0
        self._pending: deque[int] = deque()
        self._running: dict[int, float] = {}  # task -> when it started (monotonic)
        self._blocked: dict[int, float] = {}  # task -> when it blocked (epoch seconds)
        self._completed = self._failed = 0
        self._error = ""

    # -- presence ----------------------------------------------------------------------

    def status(self, online: bool, ts: str) -> Outgoing:
        """The retained ``online`` (birth) or ``offline`` (goodbye, ``reason: shutdown``).

        A will per engine is impossible: the engines of a process share one connection,
        and MQTT gives a connection one will. So a killed worker leaves its engines online.
        """
        status = StatusMessage(
            status="online" if online else "offline",
            source=self.source,
            session=self.session,
            ts=ts,
            reason=None if online else "shutdown",
        )
        return self._status_topic, encode_payload(status), 1, True

    # -- runs --------------------------------------------------------------------------

    def step(self, now: float, wall: float, ts: str) -> Outgoing:
        """The engine's next event. ``now`` is monotonic (task durations), ``wall`` epoch
        seconds (when a task blocked) and ``ts`` the envelope's time."""
        if self.run_id is None:
            return self._start_run(ts)
        running, pending, blocked = self._running, self._pending, self._blocked
        if not running and not pending and not blocked:
            return self._end_run(ts)
        rng = self._rng
        can_start = len(running) < self.settings.concurrency and (pending or blocked)
        if can_start and (not running or rng.random() < 0.5):
            if blocked and (not pending or rng.random() < 0.5):
                task = next(iter(blocked))
                del blocked[task]
            else:
                task = pending.popleft()
                if len(blocked) < _MAX_BLOCKED and rng.random() < self.settings.block_ratio:
                    blocked[task] = wall
                    return self._task(task, "BLOCKED", 0.0, ts)
            running[task] = now
            return self._task(task, "RUNNING", 0.0, ts)
        task = rng.choice(list(running))
        duration_ms = (now - running.pop(task)) * 1000
        if rng.random() < self.settings.fail_ratio:
            self._failed += 1
            return self._task(task, "FAILED", duration_ms, ts)
        self._completed += 1
        return self._task(task, "COMPLETED", duration_ms, ts)

    def stop(self, now: float, ts: str) -> list[Outgoing]:
        """What an engine stopped by Ctrl-C sends for its run: every task not ended ``FAILED``
        with ``cancelled``, then ``ENGINE_STOPPED`` (``Failed``, ``cancelled``)."""
        if self.run_id is None:
            return []
        error = "CancelledError: the run was cancelled"
        out = []
        for task in [*self._running, *self._blocked, *self._pending]:
            started = self._running.get(task)
            body = TaskStateEvent(
                task_id=_task_id(task),
                task_name=_task_name(task),
                state="FAILED",
                duration_ms=0.0 if started is None else (now - started) * 1000,
                error=error,
                cancelled=True,
            )
            out.append(self._event(body, 0, ts))
        self._running.clear()
        self._blocked.clear()
        self._pending.clear()
        end = LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error=error, cancelled=True)
        out.append(self._event(end, 1, ts))
        self._ended(ts, cancelled=len(out) - 1, stopped=True)
        return out

    def heartbeat(self, ts: str) -> Outgoing | None:
        """The run's heartbeat (counts, ``last_seq``, the tasks blocked); ``None`` between runs."""
        if self.run_id is None:
            return None
        blocked = self._blocked
        beat = Heartbeat(
            running=len(self._running),
            completed=self._completed,
            failed=self._failed,
            blocked=len(blocked),
            pending=len(self._pending),
            last_seq=self.seq,
            blocked_tasks=[
                BlockedTask(task_id=_task_id(t), task_name=_task_name(t), since=s, held_by=[_HOLD])
                for t, s in blocked.items()
            ]
            if blocked
            else msgspec.UNSET,
        )
        envelope = self._envelope(beat, ts)
        return self._heartbeat_topic, encode_payload(envelope), 0, False

    # -- the summary -------------------------------------------------------------------

    def summary(self, now: float, ts: str) -> list[Outgoing]:
        """The engine's retained summaries as they stand (QoS 0): per org and project of the
        runs it lists, then its own, its rate of events counted since the previous one
        (``now`` monotonic)."""
        live = None if self.run_id is None else self._summary_run(None)
        summary = self.book.summary(self.source, self.session, now, ts, live)
        return [
            (topic, encode_payload(said), 0, True)
            for topic, said in summary_messages(summary, self.settings.prefix)
        ]

    def _summary_run(
        self, ended: str | None, cancelled: int = 0, stopped: bool = False
    ) -> SummaryRun:
        """The run as a summary lists it: live, or ended at ``ended``; ``stopped``: by a
        cancel (so ``Failed``), which failed ``cancelled`` of its tasks."""
        settings = self.settings
        assert self.run_id is not None
        running, blocked = len(self._running), len(self._blocked)
        done = self._completed + self._failed
        failed = self._failed > 0 or stopped
        return SummaryRun(
            run_id=self.run_id,
            org_id=settings.org_id,
            project_id=settings.project_id,
            status="Running" if ended is None else "Failed" if failed else "Succeeded",
            started=self._started,
            ended=ended,
            cancelled=stopped,
            planned=settings.tasks_per_run,
            last_seq=self.seq,
            tasks=TaskTally(
                running=running,
                blocked=blocked,
                pending=max(0, settings.tasks_per_run - done - cancelled - running - blocked),
                completed=self._completed,
                failed=self._failed + cancelled,
                cancelled=cancelled,
            ),
        )

    def _ended(self, ts: str, cancelled: int = 0, stopped: bool = False) -> None:
        """The run has sent its ``ENGINE_STOPPED``: into the book, and no run is live."""
        self.book.run_ended(self._summary_run(ts, cancelled, stopped))
        self.run_id = None
        self.summary_wanted = True

    # -- the messages ------------------------------------------------------------------

    def _start_run(self, ts: str) -> Outgoing:
        settings = self.settings
        self.run_id = run_id = self._rng.getrandbits(128).to_bytes(16, "big").hex()
        self._events_topic = events_topic(
            settings.org_id, settings.project_id, run_id, settings.prefix
        )
        self._heartbeat_topic = heartbeat_topic(
            settings.org_id, settings.project_id, run_id, settings.prefix
        )
        self.seq = 0
        self._started = ts
        self.summary_wanted = True
        self._pending = deque(range(settings.tasks_per_run))
        self._completed = self._failed = 0
        self._error = ""
        start = LifecycleEvent(event="ENGINE_STARTED", tasks=settings.tasks_per_run)
        return self._event(start, 1, ts)

    def _end_run(self, ts: str) -> Outgoing:
        failed = self._failed > 0
        end = LifecycleEvent(
            event="ENGINE_STOPPED",
            status="Failed" if failed else "Succeeded",
            error=self._error if failed else "",
        )
        out = self._event(end, 1, ts)
        self._ended(ts)
        return out

    def _task(self, task: int, state: TaskState, duration_ms: float, ts: str) -> Outgoing:
        error = ""
        if state == "FAILED":
            error = f"ValueError: simulated failure of {_task_id(task)}"
            self._error = self._error or error
        body = TaskStateEvent(
            task_id=_task_id(task),
            task_name=_task_name(task),
            state=state,
            duration_ms=duration_ms,
            error=error,
            held_by=[_HOLD] if state == "BLOCKED" else msgspec.UNSET,
        )
        return self._event(body, 0, ts)

    def _event(self, body: TaskStateEvent | LifecycleEvent, qos: int, ts: str) -> Outgoing:
        kind: str
        if isinstance(body, TaskStateEvent):
            kind = body.reader_state
            self.kinds[kind] += 1
        else:
            kind = body.event
            ended = "Cancelled" if body.cancelled is True else body.status or "Failed"
            self.kinds[kind if kind == "ENGINE_STARTED" else ended] += 1
        self._tally[kind] += 1
        self.seq += 1
        envelope = self._envelope(body, ts, self.seq)
        return self._events_topic, encode_payload(envelope), qos, False

    def _envelope(
        self, body: TaskStateEvent | LifecycleEvent | Heartbeat, ts: str, seq: int = 0
    ) -> Envelope:
        settings = self.settings
        assert self.run_id is not None
        return Envelope(
            ts=ts,
            run_id=self.run_id,
            org_id=settings.org_id,
            project_id=settings.project_id,
            source=self.source,
            seq=seq or msgspec.UNSET,
            body=body,
        )


def _task_name(task: int) -> str:
    return TASK_NAMES[task % len(TASK_NAMES)]


def _task_id(task: int) -> str:
    return f"{_task_name(task)}-{task}"
