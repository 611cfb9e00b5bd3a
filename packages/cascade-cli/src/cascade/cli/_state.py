"""The state model of a live view: what the broker says about runs, engines and constraints.

:class:`WatchState` is the one place that turns received messages into state;
`cascade watch`, `cascade status` and any other view (a dashboard) render it
and never read messages themselves. It depends on :mod:`cascade.interfaces`
only (no rendering library), so it can be imported anywhere::

    state = WatchState(prefix=connector.topic_prefix)
    await connector.subscribe(telemetry_filter(prefix=prefix), state.apply)
    await connector.subscribe(status_filter(prefix), state.apply)
    await connector.subscribe(
        constraints_filter(prefix), beside_exact_reads(connector, state.apply)
    )
    if connector.capabilities.retained_to_wildcards is False:  # RabbitMQ 3.x, for one
        await read_indexed_constraints(connector, state.apply)
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
from collections.abc import Callable
from dataclasses import dataclass, field

from cascade.interfaces import (
    DEFAULT_PREFIX,
    MAX_BLOCKED_TASKS,
    MAX_CLOCK_SKEW,
    MAX_HOLDERS,
    MAX_HOLDS,
    REASON_FUTURE,
    BlockedTask,
    Constraint,
    Envelope,
    GapCounter,
    Heartbeat,
    Hold,
    InvalidMessageError,
    LifecycleEvent,
    Message,
    Refusals,
    RunSnapshot,
    Seen,
    SnapshotTask,
    StatusMessage,
    TaskStateEvent,
    ahead,
    decode_constraint,
    decode_envelope,
    decode_status,
    parse_timestamp,
    payload_limit,
)

from ._inert import KEPT, truncate
from ._views import ConnectionView, EngineView, RunView, TaskView

__all__ = ["DEFAULT_KEEP_FOR", "DEFAULT_KEEP_RUNS", "WatchState", "kept_holds"]

DEFAULT_KEEP_RUNS = 20
"""Finished runs a :class:`WatchState` keeps by default (the most recently finished)."""

DEFAULT_KEEP_FOR = 600.0
"""Seconds a :class:`WatchState` keeps a finished (or silent) run by default."""

MAX_RUNS = 50_000
"""Runs a :class:`WatchState` holds at most, finished or not (see :meth:`WatchState.prune`)."""

MAX_ENGINES = 10_000
"""Engines (sources) a :class:`WatchState` holds at most (see :meth:`WatchState.prune`)."""


_NEW, _COPY = Seen.NEW, Seen.COPY  # looked up per message: an Enum's attribute is slow


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

    Whoever may publish can claim anything, so what no engine of a run can have sent is
    refused and counted in :attr:`refusals` by the source it claims and the reason, and
    changes nothing: a message about a run from another source than the one it was first
    heard from, a second message numbered like one seen (a conflict), a number that would
    open a hole over ``MAX_SEQ_JUMP``, a timestamp more than ``MAX_CLOCK_SKEW`` ahead of
    this reader's clock (:class:`~cascade.interfaces.GapCounter`,
    :func:`~cascade.interfaces.ahead`).

    No sender can make the state big: a message larger than its kind's bound
    is counted in :attr:`oversized` and not read, and a task's name and error
    and a status's reason are kept cut to a few kilobytes (the views escape
    them when they are shown).
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
    """Messages that do not follow the protocol, ignored."""
    oversized: int = 0
    """Messages larger than their kind's bound (:func:`~cascade.interfaces.payload_limit`),
    ignored unread."""
    max_runs: int = MAX_RUNS
    max_engines: int = MAX_ENGINES
    forgotten_runs: int = 0
    """Runs dropped by :meth:`prune` so far."""
    forgotten_engines: int = 0
    """Engines dropped by :meth:`prune` so far, beyond :attr:`max_engines`."""
    gaps: GapCounter = field(default_factory=GapCounter)
    """The events this view missed (the broker or the connector shed them), per source."""
    refusals: Refusals = field(default_factory=Refusals)
    """Messages refused as no engine of their run can have sent them, by source and reason."""
    ask: Callable[[str, int], object] | None = None
    """Asks a run's engine for the run's state after an event (``SnapshotAsker.ask``): called
    when this view first hears of a run mid-way, and while it misses some of its events.
    ``None``: this view never asks, and stays partial."""

    def __post_init__(self) -> None:
        self.gaps = GapCounter(self.clock)

    def apply(self, message: Message) -> None:
        """Fold one received message into the state."""
        kind, _, rest = message.topic.removeprefix(self.prefix + "/").partition("/")
        limit = payload_limit(kind)
        if limit is not None and len(message.raw) > limit:
            self.oversized += 1
            return
        try:
            if kind == "constraints":
                self._apply_constraint(message)
            elif kind == "status":
                self._apply_status(message)
            elif kind == "telemetry" and rest.endswith(("/events", "/heartbeat", "/snapshot")):
                self._apply_envelope(decode_envelope(message.payload), message)
        except InvalidMessageError:
            self.rejected += 1

    def _apply_constraint(self, message: Message) -> None:
        if not message.payload:
            self.constraints.pop(message.topic, None)
            return
        constraint = decode_constraint(message.payload)
        for name, limit in (("reason", KEPT["reason"]), ("issued_by", KEPT["name"])):
            text = getattr(constraint, name)
            if isinstance(text, str) and len(text) > limit:
                setattr(constraint, name, truncate(text, limit))
        self.constraints[message.topic] = constraint

    def _apply_status(self, message: Message) -> None:
        source = message.topic.rsplit("/", 1)[-1]
        if not message.payload:  # a cleared retained status (`cascade forget`)
            self.engines.pop(source, None)
            return
        status = decode_status(message.payload)
        stamp = parse_timestamp(status.ts)
        if stamp is not None and ahead(stamp, self.clock()):
            self.refusals.count(status.source or source, REASON_FUTURE)
            return
        if status.reason is not None and len(status.reason) > KEPT["reason"]:
            status.reason = truncate(status.reason, KEPT["reason"])
        source = status.source or source
        known = self.engines.get(source)
        if known is None:
            known = self.engines[source] = EngineView(source, status)
            known.conflict_session = _conflict(status, None)
        elif known.status is None or status.supersedes(known.status):
            known.conflict_session = _conflict(status, known)
            known.status = status
        known.heard(stamp if stamp is not None or message.retain else self.clock())

    def _apply_envelope(self, envelope: Envelope, message: Message) -> None:
        now = self.clock()
        source, stamp = envelope.source, parse_timestamp(envelope.ts)
        if stamp is not None and stamp - now > MAX_CLOCK_SKEW:  # ahead(): inline, as hot
            self.refusals.count(source, REASON_FUTURE)
            return
        run = self.runs.get(envelope.run_id)
        if run is not None and source != run.source:
            self._refuse(run, source, Seen.FOREIGN)
            return
        body = envelope.body
        seq = envelope.seq if isinstance(envelope.seq, int) else 0
        seen = _COPY
        if seq:
            seen = self.gaps.see(source, envelope.run_id, seq, hash(message.raw))
        elif isinstance(body, (Heartbeat, RunSnapshot)) and isinstance(body.last_seq, int):
            seen = self.gaps.announce(source, envelope.run_id, body.last_seq)
        if seen is not _NEW and seen is not _COPY:
            if run is not None:
                self._refuse(run, source, seen)
            else:
                self.refusals.count(source, seen.value)
            return
        engine = self.engines.get(source)
        if engine is None:
            engine = self.engines[source] = EngineView(source, None)
        engine.heard(stamp if stamp is not None or message.retain else now)
        if run is None:
            run = RunView(envelope.run_id, envelope.org_id, envelope.project_id, source)
            self.runs[envelope.run_id] = run
            run.joined_late = _numbered(envelope) and envelope.seq != 1  # 1: ENGINE_STARTED
        run.last_heard = now
        if isinstance(envelope.trace_id, str):  # validated: 32 hex digits
            run.trace_id = envelope.trace_id
        fresh = bool(seq) and seen is _NEW
        if isinstance(body, RunSnapshot):
            self._apply_snapshot(run, source, body, now)
        elif isinstance(body, Heartbeat):
            if envelope.ts >= run.heartbeat_ts:  # ISO 8601 in UTC: text order is time order
                run.heartbeat, run.heartbeat_ts = body, envelope.ts
                if isinstance(body.blocked_tasks, list) and not run.finished:
                    self._apply_blocked(run, body.blocked_tasks, envelope.ts, now)
        elif isinstance(body, TaskStateEvent):
            if run.finished and not fresh:
                return  # a straggler or a copy after the run's end: its counts are final
            self._apply_task(run, body, envelope.ts, seq, now)  # if ended: one hole less
        elif isinstance(body, LifecycleEvent) and not run.finished:
            if body.event == "ENGINE_STARTED":
                run.status = "Running"
                if body.tasks is not None:
                    run.planned = body.tasks
            else:
                run.status = "Cancelled" if body.cancelled else body.status or "Finished"
                run.error = truncate(body.error or "", KEPT["error"])
                run.finish(now)
                self._compact_if_whole(run)
                self.prune(now)
        if self.ask is not None and not run.finished and self._partial(run):
            self.ask(run.run_id, self.gaps.known_through(run.run_id))

    def _refuse(self, run: RunView, source: str, seen: Seen) -> None:
        """A message about ``run`` that no engine of it can have sent: counted, nothing else."""
        run.refused += 1
        self.refusals.count(source, seen.value)

    def _partial(self, run: RunView) -> bool:
        """Whether this view lacks some of what ``run``'s events said (it asks its engine)."""
        return run.joined_late or self.gaps.missed_in(run.run_id) > 0

    def _compact_if_whole(self, run: RunView) -> None:
        """An ended run keeps its tasks while some of what it sent before its end is missing
        (then :meth:`prune` compacts it)."""
        if run.finished and self.gaps.missed_in(run.run_id) == 0:
            run.compact()

    def _apply_task(
        self, run: RunView, body: TaskStateEvent, ts: str, seq: int, now: float
    ) -> None:
        task = run.tasks.get(body.task_id)
        state = body.reader_state
        if task is not None:
            if seq and task.seq:
                if seq <= task.seq:
                    return  # a copy, or older than what is shown (the engine numbered both)
            elif ts < task.ts or (ts == task.ts and state == task.state):
                return  # a copy resent after a lost connection, or older than what is shown
        held = kept_holds(body.held_by) if isinstance(body.held_by, list) else None
        run.set_task(
            TaskView(
                body.task_id,
                truncate(body.task_name, KEPT["name"]),
                state,
                now,
                body.duration_ms,
                truncate(body.error, KEPT["error"]),
                ts,
                held if state == "BLOCKED" else None,
                seq,
            )
        )

    def _apply_snapshot(self, run: RunView, source: str, body: RunSnapshot, now: float) -> None:
        """One part of the engine's answer: its tasks as their latest events; once every part
        of the answer is in, what this view missed up to ``through`` is made good."""
        if run.finished:
            return
        if run.planned is None and body.planned is not None:
            run.planned = body.planned
        entry: SnapshotTask
        for entry in body.tasks:
            self.gaps.see(source, run.run_id, entry.seq)
            self._apply_task(run, entry.event(), entry.ts, entry.seq, now)
        key = (body.after, body.through, body.last_seq, body.parts)
        if run.answer_key != key:
            run.answer_key, run.answer_parts = key, set()
        run.answer_parts.add(body.part)
        if len(run.answer_parts) >= body.parts:
            self.gaps.settle(source, run.run_id, body.through)
            run.joined_late = False  # what it still lacks (a cut answer) are holes: asked again
            run.answer_key, run.answer_parts = None, set()

    def partial(self, run: RunView) -> str | None:
        """What this view lacks of ``run``, in a few words (``None``: nothing it knows of):
        ``joined late: 12 of 40 tasks known``, ``missed 5 events``, and whether its engine
        was asked or is gone."""
        if run.finished or not self._partial(run):
            return None
        known, total = len(run.tasks), run.total_tasks
        missed = self.gaps.missed_in(run.run_id)
        said = []
        if run.joined_late:
            said.append(
                f"joined late: {known} of {total if total is not None else '?'} tasks known"
            )
        if missed:
            said.append(f"missed {missed:,} events")
        engine = self.engines.get(run.source)
        if engine is not None and not engine.online:
            said.append("engine gone: showing what is known")
        elif self.ask is not None:
            said.append("asking the engine")
        return "; ".join(said)

    def _apply_blocked(self, run: RunView, blocked: list[BlockedTask], ts: str, now: float) -> None:
        """A heartbeat's blocked tasks: what holds each now, and those this view never saw."""
        for item in blocked[:MAX_BLOCKED_TASKS]:
            task = run.tasks.get(item.task_id)
            held = kept_holds(item.held_by)
            if task is None:
                since = item.since if item.since is not None else now
                name = truncate(item.task_name, KEPT["name"])
                run.set_task(TaskView(item.task_id, name, "BLOCKED", since, ts=ts, held_by=held))
            elif task.state == "BLOCKED":
                task.held_by = held

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

        An ended run of which nothing is missing any more keeps only its counts and a few
        failures (:meth:`RunView.compact`). A finished run goes once more than ``keep_runs``
        runs finished after it, or ``keep_for`` seconds after it finished. A run not heard from
        for ``keep_for`` seconds (its engine died before its end) goes too.

        Whatever engines send, the state stays bounded: beyond ``max_runs``
        runs, the least recently heard go (to 90 % of it, so that a flood of
        new runs costs a sort now and then, not one a message); beyond
        ``max_engines`` sources, the offline ones least recently heard from
        go first, then the online ones, with their gap counts
        (:attr:`forgotten_engines`).
        """
        now = self.clock() if now is None else now
        for run in self.runs.values():
            if run.finished and not run.compacted:
                self._compact_if_whole(run)
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
        if len(self.runs) > self.max_runs:
            by_age = sorted(self.runs.values(), key=lambda run: run.last_heard)
            doomed.extend(run.run_id for run in by_age[: len(by_age) - self.max_runs * 9 // 10])
        forgotten = 0
        for run_id in doomed:
            self.gaps.forget(run_id)
            if self.runs.pop(run_id, None) is not None:
                forgotten += 1
        self.forgotten_runs += forgotten
        if len(self.engines) > self.max_engines:
            self._forget_engines()
        return forgotten

    def _forget_engines(self) -> None:
        """Down to 90 % of :attr:`max_engines`: offline first, then the least recently heard."""
        ranked = sorted(
            self.engines.values(), key=lambda e: (e.online, e.last_seen or 0.0, e.source)
        )
        for engine in ranked[: len(ranked) - self.max_engines * 9 // 10]:
            del self.engines[engine.source]
            self.gaps.by_source.pop(engine.source, None)
            self.forgotten_engines += 1

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


def _numbered(envelope: Envelope) -> bool:
    """Whether the message's engine numbers its events (one that does not cannot say what a
    reader missed, nor answer for it)."""
    body = envelope.body
    return (
        isinstance(envelope.seq, int)
        or isinstance(body, RunSnapshot)
        or (isinstance(body, Heartbeat) and isinstance(body.last_seq, int))
    )


def kept_holds(holds: list[Hold]) -> tuple[Hold, ...]:
    """At most ``MAX_HOLDS`` holds, their texts cut to what a view keeps."""
    kept = []
    for hold in holds[:MAX_HOLDS]:
        for name in ("scope", "reason", "issued_by", "rate"):
            text = getattr(hold, name)
            if text is not None and len(text) > KEPT["reason"]:
                setattr(hold, name, truncate(text, KEPT["reason"]))
        if hold.holders is not None:
            most = sorted(hold.holders.items(), key=lambda item: -item[1])[:MAX_HOLDERS]
            hold.holders = {truncate(name, KEPT["name"]): n for name, n in most}
        kept.append(hold)
    return tuple(kept)


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
