"""What a live view shows: runs and their tasks, engines, and its own broker connection.

The views :class:`ReaderModel` keeps up to date from the broker's
messages, and the timestamps they are built from. Times are epoch seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cascade.interfaces import Heartbeat, Hold, StatusMessage
from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.summaries import EngineSummary

from ._decision_counts import DecisionCount

__all__ = [
    "FINISHED_STATES",
    "LAST_TIMESTAMP",
    "ConnectionView",
    "EngineView",
    "RunView",
    "TaskView",
]

FINISHED_STATES = ("COMPLETED", "FAILED", "SKIPPED", "CANCELLED")
"""Task states a task does not leave."""

LAST_TIMESTAMP = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
"""The last second of year 9999: docs/protocol.md reads an expiry beyond it as no expiry."""
_KEPT_FAILURES = 20  # failed tasks a finished run keeps, to show why it failed
_ACTIVE = ("RUNNING", "RETRYING", "BLOCKED", "HELD", "QUEUED")
_DECIDERS = 16  # (decision, person) pairs a run lists; beyond them counted as others
_DECISIONS_SEEN = 4096  # (task, attempt) decided a run remembers to count a copy once


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
    held_by: tuple[Hold, ...] | None = None
    """What holds it back, while BLOCKED, HELD or QUEUED (waiting for a worker of its executor),
    as its engine last said (``None``: it did not say, an engine before ``held_by``; empty:
    nothing holds it now)."""
    seq: int = 0
    """The number of the event that set this state (``0``: an engine that does not number)."""
    traceback: str | None = None
    """A failed attempt's traceback while ``FAILED``, ``RETRYING`` or ``HELD``, as its engine
    sent it (at most :data:`~cascade.interfaces.wire.MAX_TRACEBACK_LENGTH` characters and its
    marker; ``None``: none sent). The sender's text: a view makes it inert."""
    reused: str | None = None
    """Where a ``COMPLETED`` task's result came from when the task did not run: ``"cached"``
    (its cache, ``with_cache``) or ``"reused"`` (a rerun took the result an earlier run kept);
    ``None``: it ran, or its engine did not say."""
    reused_from: str | None = None
    """The run that kept the result it took (``None``: none named)."""
    items: int | None = None
    """A map's own task: how many items its engine said it made (``RUNNING``'s ``items``),
    kept through its later states; ``None``: not a map, or not said."""

    @property
    def hold(self) -> Hold | None:
        """While ``HELD``: the hold of type ``decision`` (its failed ``attempt``, ``deadline``
        and ``default``); else ``None``."""
        if self.state != "HELD" or not self.held_by:
            return None
        return next((hold for hold in self.held_by if hold.awaits_decision), None)


@dataclass
class RunView:
    """One run, as its telemetry describes it.

    While the run goes on, :attr:`tasks` holds every task seen; once it has
    finished and nothing it sent before its end is missing (on a broker that does not keep
    one publisher's QoS 0 and 1 messages in order, its last task states can come after its
    end), only its counts (:meth:`counts`) and up to 20 failed tasks remain.
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
    trace_id: str | None = None
    """The run's OpenTelemetry trace id, from its envelopes (``None``: not traced, or an engine
    that does not send it)."""
    last_heard: float = 0.0
    """When this view last received a message of the run (the state's clock)."""
    finished_at: float | None = None
    """When the run's end arrived (the state's clock), ``None`` while it goes on."""
    _counts: Counter[str] = field(default_factory=Counter, repr=False)
    _reused: Counter[str] = field(default_factory=Counter, repr=False)
    _total_mark: int = field(default=0, repr=False)
    _finished_mark: int = field(default=0, repr=False)
    _progress_mark: float = field(default=0.0, repr=False)
    _decided: dict[tuple[str, str | None], int] = field(default_factory=dict, repr=False)
    _decided_seen: dict[tuple[str, int], None] = field(default_factory=dict, repr=False)
    heartbeat_ts: str = ""
    """The ``ts`` of the heartbeat shown: an older one (resent or late) is ignored."""
    answer_counts: tuple[str, int, int] | None = field(default=None, repr=False)
    """The ``ts``, ``blocked`` and ``pending`` of its engine's latest snapshot answer."""
    compacted: bool = False
    """Its tasks were dropped, its counts kept (:meth:`compact`)."""
    joined_late: bool = False
    """This view first heard of the run after its start, and no snapshot of the run from its
    engine has come in since (:meth:`ReaderModel.partial` says so)."""
    answer_key: tuple[int, int, int, int] | None = field(default=None, repr=False)
    answer_parts: set[int] = field(default_factory=set, repr=False)
    answer_tasks: int = field(default=0, repr=False)
    confirmed: bool = False
    """Whether something besides its messages' word says :attr:`source` runs it: its start
    seen, a sourced topic, or the source's ``online`` status (checked when it first speaks,
    and again when another source does). Until then another source that something vouches
    for takes the run over (:class:`ReaderModel`)."""
    refused: int = 0
    """Messages about this run that this view refused (another source's, conflicting or
    impossible numbers): :attr:`ReaderModel.refusals` says whose and why."""
    name: str | None = None
    """The run's name (``Engine.run(name=...)``, a served workflow's), from its
    ``ENGINE_STARTED`` or its engine's snapshot answer (``None``: not heard, or an engine that
    does not send it)."""
    decisions_others: int = 0
    """Decisions counted beyond the 16 (decision, person) pairs :meth:`decisions` lists."""
    origin: RunOrigin | None = None
    """Where the run came from (the served workflow and its params, the run it reruns, the
    request that started it), as its ``ENGINE_STARTED`` or a snapshot answer said."""
    graph: RunGraph | None = field(default=None, repr=False)
    """The run's tasks and their dependencies, as its ``ENGINE_STARTED`` or a snapshot answer
    sent them, checked (:func:`~cascade.interfaces.graphs.check_graph`: a malformed one is
    counted in :attr:`ReaderModel.rejected` and dropped); ``None``: none heard."""
    graph_nodes: int | None = None
    """The run's task count its engine sent instead of a graph, above the graph's bound
    (``None``: it said none: a graph, or an engine before graphs)."""
    lost_at: float | None = None
    """When this view heard the broker say its engine went offline with the run not ended
    (the state's clock): the run is ``Lost`` and over (:attr:`finished_at` is the same time)
    unless a new event of it comes from its engine back online. ``None``: not lost."""
    carried_on_as: str | None = None
    """While lost: the run another server carried it on as (its ``origin.carried_on_from``
    names this run), ``None`` while none did (or none was heard of)."""
    carried_on_by: str | None = None
    """The server (source) that carried it on as :attr:`carried_on_as`."""

    @property
    def finished(self) -> bool:
        """Whether the run is over: its end (``ENGINE_STOPPED``) arrived, or it is lost
        (:attr:`lost_at`: its engine went offline before its end)."""
        return self.finished_at is not None

    @property
    def lost(self) -> bool:
        """Whether the run is lost: its engine went offline before its end (the broker's
        word), and nothing since says it goes on."""
        return self.lost_at is not None

    def counts(self) -> Counter[str]:
        """How many tasks seen are in each state."""
        return Counter(+self._counts)

    def count(self, state: str) -> int:
        """How many tasks seen are in ``state`` (no copy made: cheap across many runs)."""
        return self._counts[state]

    def reuses(self) -> Counter[str]:
        """How many tasks seen completed without running, by where their result came from
        (:attr:`TaskView.reused`: ``cached``, ``reused``)."""
        return Counter(+self._reused)

    def decisions(self) -> list[DecisionCount]:
        """The decisions people took on its held tasks that its engine applied, by kind and
        person, in the order first seen (``1 skipped by ops-1``), as its task events' ``decided``
        said; a deadline's default is no one's decision and not counted. At most 16 pairs: the
        decisions of people beyond them are counted in :attr:`decisions_others`."""
        return [DecisionCount(kind, by, count) for (kind, by), count in self._decided.items()]

    def count_decision(self, task_id: str, attempt: int, decision: str, by: str | None) -> None:
        """Count a decision applied on ``task_id``'s held ``attempt``, once (a task event
        resent is not a second decision: decisions are taken per task and attempt)."""
        key = (task_id, attempt)
        if key in self._decided_seen:
            return
        self._decided_seen[key] = None
        if len(self._decided_seen) > _DECISIONS_SEEN:
            del self._decided_seen[next(iter(self._decided_seen))]
        pair = (decision, by)
        if pair in self._decided or len(self._decided) < _DECIDERS:
            self._decided[pair] = self._decided.get(pair, 0) + 1
        else:
            self.decisions_others += 1

    @property
    def total_tasks(self) -> int | None:
        """How many tasks the run has, ``None`` while that is not known.

        Known from the start when the engine announced it; otherwise from the
        first heartbeat, or from the tasks seen once the run has finished. Never fewer than
        the tasks seen (a map's items are tasks its start did not count), nor than
        :attr:`finished_tasks`. Never decreases.
        """
        known = self.planned
        beat = self.heartbeat
        if beat is not None:
            counted = beat.running + beat.completed + beat.failed + beat.skipped + beat.blocked
            known = max(known or 0, counted + beat.pending)
        if known is None and not self.finished:
            return None
        seen = sum(self._counts.values())
        self._total_mark = max(self._total_mark, known or 0, seen, self.finished_tasks)
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

    def waiting(self) -> tuple[int, int] | None:
        """Its tasks blocked and pending, as the later of its last heartbeat and its engine's
        last snapshot answer counted them (``None``: neither heard)."""
        beat, answer = self.heartbeat, self.answer_counts
        if answer is not None and (beat is None or answer[0] > self.heartbeat_ts):
            return answer[1], answer[2]
        return None if beat is None else (beat.blocked, beat.pending)

    def active_tasks(self) -> list[TaskView]:
        """Tasks running, retrying or blocked, the longest in that state first."""
        return sorted(
            (task for task in self.tasks.values() if task.state in _ACTIVE),
            key=lambda task: task.since,
        )

    def held_tasks(self) -> list[TaskView]:
        """Tasks held for a decision, the longest held first."""
        return sorted(
            (task for task in self.tasks.values() if task.state == "HELD"),
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
            if previous.reused is not None:
                self._reused[previous.reused] -= 1
        self._counts[task.state] += 1
        if task.reused is not None:
            self._reused[task.reused] += 1
        self.tasks[task.task_id] = task

    def finish(self, now: float) -> None:
        """The run's end arrived (its tasks are kept until :meth:`compact`)."""
        self.finished_at = now

    def compact(self) -> None:
        """Keep the counts and a few failures; drop the tasks (the run has ended, and nothing
        it sent before its end is still missing)."""
        if self.compacted:
            return
        self.compacted = True
        self.finished_tasks  # noqa: B018 (records the high-water marks before tasks go)
        self.progress  # noqa: B018
        failures = self.failed_tasks()[:_KEPT_FAILURES]
        self.tasks = {task.task_id: task for task in failures}


@dataclass
class EngineView:
    """A source's presence, when it was last heard from, and its latest summary.

    ``status`` is ``None`` for a source seen only through its telemetry (no
    retained status). ``last_seen`` is the latest timestamp carried by any of
    its messages (status, telemetry, heartbeat, summary), ``None`` if none carried one; a will
    heard live (an ``offline`` without a reason, stamped when its connection was made) counts
    as heard when it arrived: the broker's word that the engine was connected until then.
    """

    source: str
    status: StatusMessage | None
    last_seen: float | None = None
    summary: EngineSummary | None = None
    """Its latest summary (:class:`~cascade.interfaces.summaries.EngineSummary`), if it
    publishes them, listing the runs its summaries per org and project vouch for (its own
    summary's topic names no org, so the runs it lists there are not shown): its figures as
    it sent them, with the live runs it listed elsewhere counted in ``more_live``. A reader
    of some orgs' summaries only has theirs added up."""
    claimed: EngineSummary | None = field(default=None, repr=False)
    """Its own summary (``{prefix}/summary/{source}``) as it sent it."""
    placed: dict[tuple[str, str], EngineSummary] = field(default_factory=dict, repr=False)
    """Its summaries per org and project, by their topic's two levels."""
    summary_at: float = 0.0
    """When :attr:`summary` was made, as far as this reader can tell: its stamp, or when it
    arrived if that is earlier (a stamp ahead of the reader's clock is not believed)."""
    conflict_session: int | None = None
    """Another session announced under the same source id while this one is
    online (two engines share the id), when it can be told: the connector said
    so in its ``online`` (``conflict_session``), or an ``online`` of an older
    session came after a newer one's."""
    summary_heard: float | None = None
    """When this view received :attr:`summary` (its clock): two live summaries say what the
    engine sent while this view listened."""
    telemetry_at: float | None = None
    """When this view last took in a telemetry message of this source (its clock)."""
    silent_since: float | None = None
    """When a summary first counted events this view should have received from this source and
    did not (``None``: none missing, or its telemetry arrived since): see
    :meth:`ReaderModel.silent_engines`."""
    unheard: int = 0
    """Events the summaries counted since :attr:`silent_since` that never arrived here."""
    unheard_where: str | None = None
    """The ``org/project`` of the first run whose events did not arrive."""
    wills: list[float] = field(default_factory=list)
    """When this view received this source's last few wills live (an ``offline`` without a
    reason: the broker's word that its connection was lost), its clock."""
    live_seen: set[str] = field(default_factory=set)
    """The runs this reader last knew live from their own events (their start, or joined
    late, and no end since): what counts an engine's live runs while it sends no summary.
    Kept while the reader stops reading events (fleet mode), emptied when it goes offline."""

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
