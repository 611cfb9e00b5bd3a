"""The reader model: runs, engines and constraints, folded from the broker's messages.

:class:`ReaderModel` is the one place that turns received messages into state (see
:mod:`cascade.reader` for how a reader feeds it); its views are in ``_views``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cascade.interfaces import (
    DEFAULT_PREFIX,
    Constraint,
    ConstraintTopicError,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LifecycleEvent,
    Message,
    RunSnapshot,
    TaskStateEvent,
    decode_envelope,
    decode_level,
    events_topic,
    same_place,
    same_source,
    split_run_topic,
    topic_matches,
)
from cascade.interfaces.graphs import check_graph
from cascade.interfaces.wire import payload_limit

from ._answers import Asked, answer_refusal
from ._bounded_text import KEPT, truncate
from ._constraints import active_constraints, apply_constraint
from ._defaults import DEFAULT_KEEP_FOR, DEFAULT_KEEP_RUNS
from ._fleet import FleetTotals, apply_summary, fleet_totals
from ._gaps import GapCounter, Seen
from ._lost_runs import LostRuns
from ._presence import (
    ENDED_FOLD_AFTER,
    EngineRows,
    apply_status,
    engine_rows,
    forget_engines,
    observe_connection,
    visible_engines,
)
from ._refusals import (
    MAX_CLOCK_SKEW,
    REASON_FUTURE,
    REASON_MISMATCH,
    REASON_NOT_ITS_PLACE,
    REASON_NOT_ITS_TOPIC,
    Refusals,
)
from ._runs import (
    apply_blocked,
    apply_snapshot,
    apply_task,
    numbered,
    silent_or_excess_runs,
)
from ._silence import note_summary, silent_engines
from ._timestamps import parse_timestamp
from ._views import ConnectionView, EngineView, RunView

__all__ = ["DEFAULT_KEEP_FOR", "DEFAULT_KEEP_RUNS", "ReaderModel"]

MAX_RUNS = 50_000
"""Runs a :class:`ReaderModel` holds at most, finished or not (see :meth:`ReaderModel.prune`)."""

MAX_GRAPH_NODES_HELD = 1_000_000
"""The nodes of runs' graphs a :class:`ReaderModel` holds at most, across its runs (500 runs of
2,000 tasks): beyond it, a run's graph is not kept (:attr:`ReaderModel.graphs_dropped`)."""

SUMMARY_END_AFTER = 15.0
"""Seconds an unfinished run must have sent nothing (three of its engine's heartbeats, 5 s
apart while it lives) before its engine's summary, listing it as ended, ends it in a reader:
its own end was missed. A run that still talks ends by its own end, with its error."""
MAX_ENGINES = 50_000
"""Engines (sources) a :class:`ReaderModel` holds at most (see :meth:`ReaderModel.prune`):
a fleet of tens of thousands, and its readers, whole; bounded against a publisher that
invents sources."""


_NEW, _COPY, _BEYOND = Seen.NEW, Seen.COPY, Seen.BEYOND  # per message: an Enum attribute is slow


@dataclass
class ReaderModel:
    """Folds telemetry, status, summary and constraint messages into runs, engines and
    constraints.

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
    this reader's clock (:class:`~cascade.reader.GapCounter`,
    :func:`~cascade.reader.ahead`), and a message on a topic that names its source
    (sourced telemetry, a status) whose payload claims another (counted by the topic's).

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
    """Messages larger than their kind's bound (:func:`~cascade.interfaces.wire.payload_limit`),
    ignored unread."""
    max_runs: int = MAX_RUNS
    max_engines: int = MAX_ENGINES
    forgotten_runs: int = 0
    """Runs dropped by :meth:`prune` so far."""
    ends_from_summaries: int = 0
    """Runs ended as their engine's summary listed them, their own end missed (see
    :data:`SUMMARY_END_AFTER`)."""
    forgotten_engines: int = 0
    """Engines dropped by :meth:`prune` so far, beyond :attr:`max_engines`."""
    max_graph_nodes: int = MAX_GRAPH_NODES_HELD
    graph_nodes_held: int = 0
    """The nodes of the runs' graphs held now (:attr:`RunView.graph`)."""
    graphs_dropped: int = 0
    """Runs' graphs not kept, beyond :attr:`max_graph_nodes` (whatever their runs send, the
    state stays bounded)."""
    gaps: GapCounter = field(default_factory=GapCounter)
    """The events this view missed (the broker or the connector shed them), per source."""
    refusals: Refusals = field(default_factory=Refusals)
    """Messages refused as no engine of their run can have sent them, by source and reason."""
    others_answers: int = 0
    """Snapshot answers about runs this view did not ask about, ignored unread: another
    reader's (`cascade why`, `held`) as a rule, on the topic every reader shares, so no
    refusal of the engine that gave them (a forger's cost nothing either way)."""
    ask: Callable[[str, int], object] | None = None
    """Asks a run's engine for the run's state after an event (``SnapshotAsker.ask``): called
    when this view first hears of a run mid-way, and while it misses some of its events.
    ``None``: this view never asks, and stays partial."""
    run_watchers: list[Callable[[RunView], None]] = field(default_factory=list)
    """Each is called with a run changed by something other than its own messages: lost when
    its engine went offline, told where it was carried on, or back when its engine went on
    (a view that redraws what changed, as the dashboard, or counts ends, learns of them)."""
    telemetry_filters: set[str] = field(default_factory=set)
    """The telemetry filters this view subscribes to now (a view adds and removes them as it
    subscribes and unsubscribes; :class:`TelemetrySwitch` does): the engines whose summaries
    count events on those topics that never arrive are :meth:`silent_engines`. Empty (a view
    that reads no telemetry, as `cascade status`): no engine is taken for silent."""

    def __post_init__(self) -> None:
        self.gaps = GapCounter(self.clock)
        # finished runs in the order they finished (a dict as an ordered set), and those of
        # them still missing something: a run's end costs O(1), not a walk of every run
        self._finished: dict[str, None] = {}
        self._holed: set[str] = set()
        # runs held unfinished that their engine's summary listed ended, with that status,
        # ended once silent (:data:`SUMMARY_END_AFTER`): a summary lists the last 20 runs, which
        # an engine running a few a second has replaced before a run has been silent for long
        self._said_ended: dict[str, str] = {}
        self._asked = Asked()
        self._reading_since: float | None = None  # first summary since telemetry_filters
        self.lost = LostRuns(self.runs, self.engines, self._over, self._back, self._changed)
        """The runs lost with their engines, and the carry-ons heard of them."""

    def apply(self, message: Message) -> None:
        """Fold one received message into the state."""
        kind = message.topic.removeprefix(self.prefix + "/").partition("/")[0]
        limit = payload_limit(kind)
        if limit is not None and len(message.raw) > limit:
            self.oversized += 1
            return
        try:
            if kind == "constraints":
                apply_constraint(self.constraints, message, self.prefix)
            elif kind == "status":
                died = apply_status(self.engines, self.refusals, self.clock, message)
                if died is not None:
                    self.lost.engine_died(*died, self.clock())
            elif kind == "summary":
                self._apply_summary(message)
            elif kind == "telemetry":
                split = split_run_topic(message.topic, self.prefix)
                if split is not None:
                    envelope = decode_envelope(message.payload)
                    if not same_place(
                        message.topic, envelope.org_id, envelope.project_id, self.prefix
                    ):
                        self._refuse_place(envelope.run_id, envelope.source)
                        return
                    self._apply_envelope(envelope, message, split[1])
        except ConstraintTopicError:  # counted by its topic: a payload's claims name nothing
            self.refusals.count(message.topic.removeprefix(self.prefix + "/"), REASON_NOT_ITS_TOPIC)
        except InvalidMessageError:
            self.rejected += 1

    def _apply_summary(self, message: Message) -> None:
        level = message.topic.rsplit("/", 1)[-1]
        known = self.engines.get(decode_level(level))
        before = known.summary if known is not None else None
        before_heard = known.summary_heard if known is not None else None
        apply_summary(self.engines, self.refusals, self.clock, message, self.prefix)
        engine = self.engines.get(decode_level(level))
        if engine is None or engine.summary is None or engine.summary is before:
            return
        now = self.clock()
        engine.summary_heard = now
        self._ends_from_summary(engine, now)
        if not self.telemetry_filters:
            self._reading_since = None
            return
        self._ask_listed(engine)
        if self._reading_since is None:
            self._reading_since = now
        if before_heard is not None and before_heard < self._reading_since:
            return  # heard before this view read telemetry: what came after may predate it
        filters, prefix = self.telemetry_filters, self.prefix
        note_summary(engine, before, before_heard, message.retain, filters, prefix, now)

    def _ends_from_summary(self, engine: EngineView, now: float) -> None:
        """The runs of ``engine`` this view holds unfinished that its summary lists as ended
        end as it says once they have sent nothing for :data:`SUMMARY_END_AFTER` seconds: their
        own end was missed (the broker or the connector shed it). They end as the summary says,
        so that the bounds on finished runs hold them (``keep_runs``), not the ``keep_for`` of a
        run whose engine went silent: a reader that sheds under load must not hold every run
        whose end it missed for ten minutes. The summary's word is kept until then (a summary
        lists only the last runs, gone from it within seconds when an engine runs several a
        second), and dropped if a later one lists the run live."""
        summary = engine.summary
        if summary is None:
            return
        for listed in summary.listed:
            run = self.runs.get(listed.run_id)
            if run is None or run.finished or run.source != engine.source:
                continue
            if listed.status == "Running":
                self._said_ended.pop(run.run_id, None)
            else:
                self._said_ended[run.run_id] = "Cancelled" if listed.cancelled else listed.status
        self._end_said_ended(now)

    def _end_said_ended(self, now: float) -> None:
        """End the runs their engine's summary listed ended that have been silent for
        :data:`SUMMARY_END_AFTER` seconds since (see :meth:`_ends_from_summary`)."""
        if not self._said_ended:
            return
        for run_id, status in list(self._said_ended.items()):
            run = self.runs.get(run_id)
            if run is not None and not run.finished and now - run.last_heard < SUMMARY_END_AFTER:
                continue  # it still talks: its own end may yet come, with its error
            del self._said_ended[run_id]
            if run is None or run.finished:
                continue
            run.status = status
            run.finish(now)
            self.ends_from_summaries += 1
            self._finished[run_id] = None
            engine = self.engines.get(run.source)
            if engine is not None:
                engine.live_seen.discard(run_id)
            self._compact_if_whole(run)
            self._changed(run)
        self.forgotten_runs += self._retire_finished(now)

    def _ask_listed(self, engine: EngineView) -> None:
        """The live runs an engine's summary lists that this view reads the telemetry of and
        has not heard of: a view that joined while they sent nothing (a long task, no
        heartbeat yet) asks their engine, whose answer shows them, their tasks by state."""
        summary = engine.summary
        if self.ask is None or summary is None:
            return
        for listed in summary.listed:
            if listed.status != "Running" or listed.run_id in self.runs:
                continue
            topic = events_topic(listed.org_id, listed.project_id, listed.run_id, self.prefix)
            if any(topic_matches(f, topic) for f in self.telemetry_filters):
                self.request_snapshot(listed.run_id, 0, engine.source)

    def _apply_envelope(self, envelope: Envelope, message: Message, sourced: str | None) -> None:
        now = self.clock()
        source, stamp = envelope.source, parse_timestamp(envelope.ts)
        run = self.runs.get(envelope.run_id)
        if sourced is not None and source != sourced and not same_source(source, sourced):
            if run is not None:
                run.refused += 1
            self.refusals.count(
                decode_level(sourced), REASON_MISMATCH
            )  # the topic is what an ACL binds
            return
        if stamp is not None and stamp - now > MAX_CLOCK_SKEW:  # ahead(): inline, as hot
            self.refusals.count(source, REASON_FUTURE)
            return
        if run is not None and source != run.source:
            if self._confirmed(run) or not self._vouched(envelope, sourced):
                self._refuse(run, source, Seen.FOREIGN)
                return
            self._take_over(run)  # the first speaker was believed no more than this one
            run = None
        body = envelope.body
        seq = envelope.seq if isinstance(envelope.seq, int) else 0
        seen = _COPY
        if seq:  # an event (a numbered answer is refused below, before it changes anything)
            seen = self.gaps.see(source, envelope.run_id, seq, hash(message.raw))
            if seen is _BEYOND and run is not None and self._displaced(run, seq):
                run = None  # heard anew from this number
                seen = self.gaps.see(source, envelope.run_id, seq, hash(message.raw))
        elif isinstance(body, (Heartbeat, RunSnapshot)):
            if isinstance(body, RunSnapshot):  # rare: its checks cost the events nothing
                why = answer_refusal(self._asked, run, envelope.run_id, source, body, now)
                if why == Seen.UNASKED.value:
                    self.others_answers += 1
                    return
                if why is not None:
                    if run is not None:
                        run.refused += 1
                    self.refusals.count(source, why)
                    return
            if isinstance(body.last_seq, int):
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
        engine.telemetry_at = now
        if engine.silent_since is not None:
            engine.silent_since, engine.unheard, engine.unheard_where = None, 0, None
        if run is None:
            run = RunView(envelope.run_id, envelope.org_id, envelope.project_id, source)
            self.runs[envelope.run_id] = run
            run.joined_late = numbered(envelope) and envelope.seq != 1  # 1: ENGINE_STARTED
            run.confirmed = self._vouched(envelope, sourced)
        run.last_heard = now
        if isinstance(envelope.trace_id, str):  # validated: 32 hex digits
            run.trace_id = envelope.trace_id
        fresh = bool(seq) and seen is _NEW
        if run.lost_at is not None and fresh and self._goes_on(run, body):
            self.lost.goes_on(run)
        if isinstance(body, RunSnapshot):
            if seq:  # answers are not numbered: this one was not checked as one
                self._refuse(run, source, Seen.INCONSISTENT)
            else:
                if body.part == 1:
                    self._take_graph(run, body.graph, body.graph_nodes)
                    if run.answer_counts is None or envelope.ts > run.answer_counts[0]:
                        run.answer_counts = (envelope.ts, body.blocked, body.pending)
                carried = run.origin
                taken = apply_snapshot(run, self.gaps, source, body, now)
                if taken is Seen.NEW:
                    self._asked.done(run.run_id)
                    if run.origin is not carried:
                        self.lost.carried(run, now)
                elif taken is not None:
                    self._refuse(run, source, taken)
        elif isinstance(body, Heartbeat):
            if envelope.ts >= run.heartbeat_ts:  # ISO 8601 in UTC: text order is time order
                run.heartbeat, run.heartbeat_ts = body, envelope.ts
                if isinstance(body.blocked_tasks, list) and not run.finished:
                    apply_blocked(run, body.blocked_tasks, envelope.ts, now)
        elif isinstance(body, TaskStateEvent):
            if run.finished and not fresh:
                return  # a straggler or a copy after the run's end: its counts are final
            apply_task(run, body, envelope.ts, seq, now)  # if ended: one hole less
        elif isinstance(body, LifecycleEvent) and not run.finished:
            if body.event == "ENGINE_STARTED":
                run.status = "Running"
                if body.tasks is not None:
                    run.planned = body.tasks
                if body.name is not None:
                    run.name = body.name
                if body.origin is not None:
                    run.origin = body.origin
                    self.lost.carried(run, now)
                self._take_graph(run, body.graph, body.graph_nodes)
            else:
                run.status = "Cancelled" if body.cancelled else body.status or "Finished"
                run.error = truncate(body.error or "", KEPT["error"])
                run.finish(now)
                self._finished[run.run_id] = None
                self._compact_if_whole(run)
                self.forgotten_runs += self._retire_finished(now)
                if len(self.runs) > self.max_runs or len(self.engines) > self.max_engines:
                    self.prune(now)
        if run.finished:
            engine.live_seen.discard(run.run_id)
        elif run.source == source:
            engine.live_seen.add(run.run_id)
        if self.ask is not None and not run.finished and self._partial(run):
            self.request_snapshot(run.run_id, self.gaps.known_through(run.run_id), run.source)

    def _goes_on(self, run: RunView, body: Any) -> bool:
        """Whether a new event of lost ``run`` says it goes on: its engine is back online
        (an event published before the death and heard after it is a straggler), or it is the
        run's end, which says how it went whenever it comes."""
        if isinstance(body, LifecycleEvent) and body.event != "ENGINE_STARTED":
            return True
        engine = self.engines.get(run.source)
        return engine is not None and engine.status is not None and engine.online

    def _over(self, run: RunView) -> None:
        self._finished[run.run_id] = None

    def _back(self, run: RunView) -> None:
        self._finished.pop(run.run_id, None)

    def _changed(self, run: RunView) -> None:
        for watcher in self.run_watchers:
            watcher(run)

    def _take_graph(self, run: RunView, graph: Any, graph_nodes: Any) -> None:
        """A run's graph (or, above the bound, its size) as its start or a snapshot answer sent
        it, unless it has one already (the first stays). A malformed graph is dropped and
        counted in :attr:`rejected` (what else its message said is taken); one beyond
        :attr:`max_graph_nodes` is not kept (:attr:`graphs_dropped`)."""
        if isinstance(graph_nodes, int) and run.graph_nodes is None:
            run.graph_nodes = graph_nodes
        if graph is None or graph is msgspec.UNSET or run.graph is not None:
            return
        if self.graph_nodes_held >= self.max_graph_nodes:  # none would fit: not even read
            self.graphs_dropped += 1
            return
        try:
            checked = check_graph(graph)
        except InvalidMessageError:
            self.rejected += 1
            return
        if self.graph_nodes_held + len(checked.nodes) > self.max_graph_nodes:
            self.graphs_dropped += 1
            return
        run.graph = checked
        self.graph_nodes_held += len(checked.nodes)

    def request_snapshot(self, run_id: str, after: int = 0, source: str | None = None) -> None:
        """Ask ``run_id``'s engine (``source``, when known) for the run's state after event
        ``after`` (through :attr:`ask`): only the runs asked about this way are answered for
        (``_answers``). Nothing is asked when :attr:`ask` is ``None``."""
        if self.ask is None:
            return
        self._asked.note(run_id, source, self.clock())
        self.ask(run_id, after)

    def _vouched(self, envelope: Envelope, sourced: str | None) -> bool:
        """Whether something besides the message's own word says its source runs its run: its
        start (``ENGINE_STARTED``, ``seq`` 1), a topic that names the source (the sourced
        layout: what a broker ACL binds), or the source's ``online`` status."""
        if sourced is not None:
            return True
        body = envelope.body
        if isinstance(body, LifecycleEvent) and body.event == "ENGINE_STARTED":
            return envelope.seq == 1
        engine = self.engines.get(envelope.source)
        status = engine.status if engine is not None else None
        return status is not None and status.status == "online"

    def run_owner(self, run_id: str) -> tuple[str, bool] | None:
        """The source ``run_id`` is taken from, and whether something besides its messages
        vouches for it (its start seen, a sourced topic, its ``online`` status); ``None`` for a
        run this view does not hold. A source vouched for takes over a run that is not
        (:attr:`RunView.confirmed`): readers of the run's other messages (its task logs)
        believe the one this says."""
        run = self.runs.get(run_id)
        return None if run is None else (run.source, self._confirmed(run))

    def _confirmed(self, run: RunView) -> bool:
        """Whether something vouches for ``run``'s source (:attr:`RunView.confirmed`); its
        ``online`` status may have come since the run was first heard."""
        if not run.confirmed:
            engine = self.engines.get(run.source)
            status = engine.status if engine is not None else None
            run.confirmed = status is not None and status.status == "online"
        return run.confirmed

    def _take_over(self, run: RunView) -> None:
        """A run first heard from a source nothing vouched for, now from one something does:
        what the first said of it goes (counted refused, as that source's) and the run is
        heard anew, from the one vouched for."""
        self.refusals.count(run.source, Seen.FOREIGN.value)
        engine = self.engines.get(run.source)
        if engine is not None:
            engine.live_seen.discard(run.run_id)
        self._forget(run.run_id)

    def _displaced(self, run: RunView, seq: int) -> bool:
        """Whether ``run``'s numbers rest on one event far above ``seq`` (a forger's number
        heard first: :meth:`~cascade.reader.GapCounter.lone`): then that event goes
        (counted refused) and the run is heard anew."""
        lone = self.gaps.lone(run.run_id)
        if lone is None or seq >= lone:
            return False
        self.refusals.count(run.source, Seen.BEYOND.value)
        self._forget(run.run_id)
        return True

    def _refuse_place(self, run_id: str, source: str) -> None:
        """A run's message whose payload names another org or project than its topic: the
        topic is what a broker ACL binds to the sender's login, so the payload is forged."""
        run = self.runs.get(run_id)
        if run is not None:
            run.refused += 1
        self.refusals.count(source, REASON_NOT_ITS_PLACE)

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
            self._holed.discard(run.run_id)
        elif run.finished:
            self._holed.add(run.run_id)

    def partial(self, run: RunView) -> str | None:
        """What this view lacks of ``run``, in a few words (``None``: nothing it knows of):
        ``joined late: 12 of 40 tasks known``, ``missed 5 events``, ``host-1 unconfirmed as its
        engine`` (nothing vouched for its source yet), and whether its engine was asked or is
        gone."""
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
        if not self._confirmed(run):
            said.append(f"{run.source} unconfirmed as its engine")
        engine = self.engines.get(run.source)
        if engine is not None and not engine.online:
            said.append("engine gone: showing what is known")
        elif self.ask is not None:
            said.append("asking the engine")
        return "; ".join(said)

    def observe_connection(self, connected: bool, now: float | None = None) -> None:
        """Record whether the view's broker connection is up (call it now and then)."""
        observe_connection(self.connection, connected, self.clock() if now is None else now)

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
        self._end_said_ended(now)
        for run_id in list(self._holed):
            run = self.runs.get(run_id)
            if run is None:
                self._holed.discard(run_id)
            else:
                self._compact_if_whole(run)
        forgotten = self._retire_finished(now)
        for run_id in silent_or_excess_runs(self.runs, now, self.keep_for, self.max_runs):
            run = self.runs.get(run_id)
            engine = self.engines.get(run.source) if run is not None else None
            if engine is not None:  # silent for long, or beyond the bound: no longer live
                engine.live_seen.discard(run_id)
            forgotten += self._forget(run_id)
        self.forgotten_runs += forgotten
        if len(self.engines) > self.max_engines:
            self.forgotten_engines += forget_engines(self.engines, self.gaps, self.max_engines)
        return forgotten

    def _retire_finished(self, now: float) -> int:
        """Forget the finished runs beyond ``keep_runs`` or ``keep_for``, oldest first."""
        finished, keep_runs = self._finished, self.keep_runs
        excess = len(finished) - keep_runs if keep_runs is not None else 0
        horizon = now - self.keep_for if self.keep_for is not None else None
        doomed = []
        for run_id in finished:
            run = self.runs.get(run_id)
            if run is None or excess > 0:
                excess -= 1
            elif horizon is None or (run.finished_at or 0.0) >= horizon:
                break  # every later one finished later
            doomed.append(run_id)
        return sum(self._forget(run_id) for run_id in doomed)

    def forget_run(self, run_id: str) -> bool:
        """Drop the run ``run_id`` and what is kept about it (a reader that stops reading its
        events: what it would hold of it would only go stale); whether it was held."""
        return self._forget(run_id) == 1

    def _forget(self, run_id: str) -> int:
        """Drop a run and what is kept about it; 1 if it was there."""
        self.gaps.forget(run_id)
        self._asked.done(run_id)
        self._finished.pop(run_id, None)
        self._holed.discard(run_id)
        self._said_ended.pop(run_id, None)
        run = self.runs.pop(run_id, None)
        if run is None:
            return 0
        if run.graph is not None:
            self.graph_nodes_held -= len(run.graph.nodes)
        return 1

    def forget_runs(self) -> int:
        """Forget every run; returns how many (a view that stops reading telemetry for a while:
        what it knew of each run goes stale, and the events it chose not to read are not missed).

        When it reads telemetry again, each run it hears of is one joined late (it asks its
        engine, :attr:`ask`). Not counted in :attr:`forgotten_runs`, which counts bounds.
        """
        return sum(self.forget_run(run_id) for run_id in list(self.runs))

    def visible_engines(
        self, offline_max_age: float | None = None, now: float | None = None
    ) -> tuple[list[EngineView], int]:
        """Engines sorted by source, and how many were left out.

        Offline engines last heard from more than ``offline_max_age`` seconds
        ago (or never, with a timestamp) are left out; ``None`` keeps every engine.
        """
        return visible_engines(self.engines, offline_max_age, self.clock() if now is None else now)

    def engine_rows(
        self,
        offline_max_age: float | None = None,
        fold_ended_after: float | None = ENDED_FOLD_AFTER,
        now: float | None = None,
    ) -> EngineRows:
        """The engines a view lists: as :meth:`visible_engines`, but those that ended cleanly
        (``offline`` with reason ``shutdown``, no live run left, no shared id) and were last
        heard from ``fold_ended_after`` seconds ago or more are folded into
        :attr:`EngineRows.folded` (``None``: none folded). An engine that went offline
        otherwise (its will: a lost connection) stays listed."""
        return engine_rows(
            self.engines, offline_max_age, fold_ended_after, self.clock() if now is None else now
        )

    def silent_engines(self, now: float | None = None) -> list[EngineView]:
        """The engines whose telemetry does not reach this view: their summaries, received
        live, counted events on topics this view subscribes to (:attr:`telemetry_filters`) and
        none arrived for :data:`~._silence.SILENT_AFTER` seconds (a broker's ACL drops them).
        :func:`~._silence.silence_line` says it on one line."""
        return silent_engines(self.engines.values(), self.clock() if now is None else now)

    def fleet(self) -> FleetTotals:
        """The fleet added up from its engines' summaries (:class:`FleetTotals`)."""
        return fleet_totals(self.engines.values())

    def active_constraints(self) -> list[tuple[str, Constraint]]:
        """The constraints in force now (expired ones left out), by topic."""
        return active_constraints(self.constraints, self.clock())
