"""The wire protocol's message schemas (docs/protocol.md), with strict decoding of untrusted input.

Schemas are msgspec structs: encoding them is fast enough for the telemetry hot
path, and decoding reports the offending field (``$.params.limit``). Unknown
fields are ignored, as the protocol asks of readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._decisions import Decided
from ._holds import QUEUED, BlockedTasks, Hold, Holds
from ._limits import MAX_NUMBER
from ._serving import RunOrigin

__all__ = [
    "PROTOCOL_VERSION",
    "TERMINAL_STATES",
    "Body",
    "Envelope",
    "Heartbeat",
    "LifecycleEvent",
    "LifecycleName",
    "ReaderState",
    "MAX_SNAPSHOT_TASKS",
    "RunSnapshot",
    "RunStatus",
    "SnapshotTask",
    "StatusMessage",
    "TaskState",
    "TaskStateEvent",
    "TraceId",
    "decode_envelope",
    "decode_status",
    "held_for_decision",
    "utc_now_iso",
]

PROTOCOL_VERSION = "1.0"
_MAX_NUMBER = MAX_NUMBER

MAX_SNAPSHOT_TASKS = 5_000
"""The most tasks an engine lists in one answer to a snapshot request (a reader asks again
for the rest)."""
# What a reader accepts in one message: more than engines send, so that a later engine's
# longer lists are not taken for malformed messages.
_SNAPSHOT_READ_LIMIT = 10_000

TaskState: TypeAlias = Literal["RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING"]
"""A task's ``state`` as an engine sends it."""
ReaderState: TypeAlias = Literal[
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "SKIPPED",
    "BLOCKED",
    "RETRYING",
    "CANCELLED",
    "HELD",
    "QUEUED",
]
"""A task's state as readers show it: the wire's; ``CANCELLED`` for a ``FAILED`` task
that carries ``cancelled``; ``HELD`` for a ``BLOCKED`` task held for a decision (a hold of
type ``decision`` in its ``held_by``); ``QUEUED`` for a ``BLOCKED`` task handed to its
executor that waits for a worker (a hold of type ``queued``)."""
TERMINAL_STATES: frozenset[str] = frozenset({"COMPLETED", "FAILED", "SKIPPED", "CANCELLED"})
"""Reader states a task never leaves."""
LifecycleName: TypeAlias = Literal["ENGINE_STARTED", "ENGINE_STOPPED"]
RunStatus: TypeAlias = Literal["Succeeded", "Failed"]
"""How a run ended: the ``status`` of its ``ENGINE_STOPPED``."""

_Count = Annotated[int, msgspec.Meta(ge=0)]
_NAME_LIMIT = 256
_RunIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
TraceId: TypeAlias = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
"""An OpenTelemetry trace id as W3C Trace Context writes it: 32 lowercase hex digits."""


def utc_now_iso() -> str:
    """The current time as the protocol writes it: ISO 8601 in UTC with ``+00:00``."""
    return datetime.now(timezone.utc).isoformat()


class LifecycleEvent(
    msgspec.Struct, tag="LifecycleEvent", tag_field="type", kw_only=True, omit_defaults=True
):
    """A run's start or end. ``status`` and ``error`` are set on ``ENGINE_STOPPED``.

    ``tasks`` (on ``ENGINE_STARTED``) is how many tasks the run plans, so that an
    observer knows the run's size from its start; it is additive: readers that
    do not know it ignore it, and engines that do not send it leave it ``None``.

    ``cancelled`` (on ``ENGINE_STOPPED``, additive) is ``True`` when the run was
    cancelled; its ``status`` is then ``Failed``, which every reader knows: a
    ``Cancelled`` status would make readers that know only ``Succeeded`` and
    ``Failed`` (Cascade's own before it) reject the whole message.

    ``name`` (on ``ENGINE_STARTED``, additive) is the run's name (``Engine.run(name=...)``,
    by default its target's task name); ``origin`` (additive) where it came from: the served
    workflow and its params, the run it reruns and the request that started it.

    ``graph`` (on ``ENGINE_STARTED``, additive) is the run's tasks and their dependencies, as
    sent and unchecked (a reader takes it through
    :func:`~cascade.interfaces.graphs.check_graph`, so that a malformed one costs it nothing else
    of the message); an engine sends it for a run of at most
    :data:`~cascade.interfaces.graphs.MAX_GRAPH_NODES` tasks, and ``graph_nodes``, the run's
    task count, instead of it for a bigger run (so that a reader can say why there is none).

    ``log_lines`` (on ``ENGINE_STOPPED``, additive) is how many lines the run's tasks logged
    where its engine forwards their logs (the dropped ones too: each task's last line
    number, added up), so that a reader of its logs can tell the lines it never received;
    left out when they logged none.
    """

    event: LifecycleName
    status: RunStatus | None = None
    error: str | None = None
    tasks: _Count | None = None
    cancelled: bool | None = None
    name: Annotated[str, msgspec.Meta(max_length=_NAME_LIMIT)] | None = None
    origin: RunOrigin | None = None
    log_lines: _Count | None = None
    graph: Any = None
    graph_nodes: _Count | None = None


class TaskStateEvent(msgspec.Struct, tag="TaskStateEvent", tag_field="type", kw_only=True):
    """A task entered ``state``. ``error`` is ``"ExcType: message"``, or ``""`` when none.

    ``held_by`` (additive, on ``BLOCKED`` only; unset elsewhere and from engines that
    do not send it) names what holds the task back: :class:`Hold` each.

    ``cancelled`` (additive) is ``True`` on the terminal state of a task the run stopped
    (a cancel, or the run's own end while the task ran or waited); its ``state`` is then
    ``FAILED``, which every reader knows, as a cancelled run's status is ``Failed``.
    Readers that know the field show the task as ``CANCELLED`` (:func:`reader_state`).

    ``traceback`` (additive, on ``FAILED``, ``RETRYING`` and a held ``BLOCKED`` only, never on
    a cancelled task; unset from engines that do not send it) is the failed attempt's Python
    traceback, at most :data:`~cascade.interfaces.MAX_TRACEBACK_LENGTH` characters as an engine
    sends it (:func:`~cascade.interfaces.truncate_traceback`). Like ``error``, it is the
    sender's text: a reader makes it inert before showing it.

    A task held for a decision (``on_failure="hold"``) is ``BLOCKED`` with a hold of type
    ``decision`` (:attr:`held`), which every reader knows as waiting; its ``error`` and
    ``traceback`` are the failed attempt's. ``decided`` (additive) is on the event a
    decision leads to: :class:`~cascade.interfaces.commands.Decided`.

    On ``COMPLETED`` (additive): ``reused_from``, the run whose stored result a rerun took
    instead of running the task; ``cached``, ``True`` when the task's cache (``with_cache``)
    gave its result instead of running it (``reused_from`` names the run that kept it, when
    from the results store; a cache policy's result names none); ``not_kept``, why an engine
    that keeps results did not keep this one (it cannot be stored as the results' format says,
    or it is over the bound).

    On ``RUNNING`` (additive): ``items``, on a map's task (``task.map(...)``) when it makes
    its items, how many: the tasks ``<task_id>[0]`` to ``<task_id>[items - 1]``, of its name.
    """

    task_id: str
    task_name: str
    state: TaskState
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=_MAX_NUMBER)] = 0.0
    error: str = ""
    held_by: Holds | msgspec.UnsetType = msgspec.UNSET
    cancelled: bool | msgspec.UnsetType = msgspec.UNSET
    traceback: str | msgspec.UnsetType = msgspec.UNSET
    decided: Decided | msgspec.UnsetType = msgspec.UNSET
    reused_from: _RunIdText | msgspec.UnsetType = msgspec.UNSET
    cached: bool | msgspec.UnsetType = msgspec.UNSET
    not_kept: Annotated[str, msgspec.Meta(max_length=1024)] | msgspec.UnsetType = msgspec.UNSET
    items: _Count | msgspec.UnsetType = msgspec.UNSET

    @property
    def held(self) -> Hold | None:
        """The ``decision`` hold of a task held for a decision, else ``None``."""
        return held_for_decision(self.state, self.held_by)

    @property
    def reader_state(self) -> ReaderState:
        """The state a reader shows: ``CANCELLED`` for a cancelled task, ``HELD`` for one held
        for a decision, else :attr:`state`."""
        if self.cancelled is True:
            return "CANCELLED"
        return waiting_state(self.state, self.held_by)


def held_for_decision(state: str, held_by: Holds | msgspec.UnsetType) -> Hold | None:
    """The hold of type ``decision`` of a ``BLOCKED`` task, else ``None``."""
    if state != "BLOCKED" or held_by is msgspec.UNSET:
        return None
    return next((hold for hold in held_by if hold.type == "decision"), None)


def waiting_state(state: TaskState, held_by: Holds | msgspec.UnsetType) -> ReaderState:
    """The state a reader shows of a task whose wire state is ``state``: ``HELD`` for a
    ``BLOCKED`` task held for a decision, ``QUEUED`` for one that waits for a worker of its
    executor, else ``state``."""
    if state != "BLOCKED" or held_by is msgspec.UNSET or not held_by:
        return state
    queued = False
    for hold in held_by:
        if hold.type == "decision":
            return "HELD"
        queued = queued or hold.type == QUEUED
    return "QUEUED" if queued else state


class Heartbeat(msgspec.Struct, tag="Heartbeat", tag_field="type", kw_only=True):
    """Periodic counters of a run, published on the run's ``.../heartbeat`` topic."""

    running: _Count = 0
    completed: _Count = 0
    failed: _Count = 0
    skipped: _Count = 0
    blocked: _Count = 0
    pending: _Count = 0
    dropped_telemetry: _Count = 0
    cancelled: _Count | msgspec.UnsetType = msgspec.UNSET
    """How many of the ``failed`` tasks the run stopped (additive: sent as ``FAILED`` with
    ``cancelled``, so that readers of the counts alone still see every task end)."""
    last_seq: _Count | msgspec.UnsetType = msgspec.UNSET
    """The ``seq`` of the run's latest event before this heartbeat (additive; see Envelope)."""
    blocked_tasks: BlockedTasks | msgspec.UnsetType = msgspec.UNSET
    """The tasks blocked now, each with what holds it now (additive; at most
    :data:`~cascade.interfaces.MAX_BLOCKED_TASKS`, those held for a decision first; unset
    when none is blocked)."""
    held: _Count | msgspec.UnsetType = msgspec.UNSET
    """How many of the ``blocked`` tasks are held for a decision (additive; unset when none
    is, and from engines that do not hold)."""


class SnapshotTask(msgspec.Struct, kw_only=True):
    """One task's latest event as its engine published it: its ``seq`` and ``ts`` and the
    fields of its :class:`TaskStateEvent`, so that a reader takes it as that event.

    ``items`` (additive): on a map's own task, whatever its state, how many items it made
    (its ``RUNNING``'s ``items``), for a reader that missed that event."""

    seq: Annotated[int, msgspec.Meta(ge=1)]
    ts: str
    task_id: str
    task_name: str
    state: TaskState
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=_MAX_NUMBER)] = 0.0
    error: str = ""
    held_by: Holds | msgspec.UnsetType = msgspec.UNSET
    cancelled: bool | msgspec.UnsetType = msgspec.UNSET
    reused_from: _RunIdText | msgspec.UnsetType = msgspec.UNSET
    cached: bool | msgspec.UnsetType = msgspec.UNSET
    items: _Count | msgspec.UnsetType = msgspec.UNSET

    @property
    def reader_state(self) -> ReaderState:
        """The state a reader shows, as :attr:`TaskStateEvent.reader_state`."""
        if self.cancelled is True:
            return "CANCELLED"
        return waiting_state(self.state, self.held_by)

    def event(self) -> TaskStateEvent:
        """The task's latest event."""
        return TaskStateEvent(
            task_id=self.task_id,
            task_name=self.task_name,
            state=self.state,
            duration_ms=self.duration_ms,
            error=self.error,
            held_by=self.held_by,
            cancelled=self.cancelled,
            reused_from=self.reused_from,
            cached=self.cached,
            items=self.items,
        )


class RunSnapshot(msgspec.Struct, tag="RunSnapshot", tag_field="type", kw_only=True):
    """A run's state as its engine knows it, on the run's ``.../snapshot`` topic (additive).

    The engine's answer to readers that asked for it (:class:`SnapshotRequest`): the
    latest event of every task whose latest event's ``seq`` is in ``(after, through]``,
    in ``parts`` messages (this is ``part``, from 1), with the run's counts (as a
    heartbeat's) and ``last_seq``, its latest event's number, when it answered. With
    every part in, a reader that knew the run's events up to ``after`` knows its state
    up to ``through``: whatever it missed up to there is superseded. ``through`` is below
    ``last_seq`` when the answer was cut at :data:`MAX_SNAPSHOT_TASKS` tasks: the reader
    asks again from ``through``. ``planned`` is the run's task count; ``name`` and
    ``origin`` (additive) are its ``ENGINE_STARTED``'s, for a reader that missed it, and so are
    ``graph`` and ``graph_nodes`` (additive, on the answer's first part only; ``graph`` unchecked,
    as :class:`LifecycleEvent`'s).
    """

    after: _Count
    through: _Count
    last_seq: _Count
    part: Annotated[int, msgspec.Meta(ge=1)] = 1
    parts: Annotated[int, msgspec.Meta(ge=1)] = 1
    planned: _Count | None = None
    running: _Count = 0
    completed: _Count = 0
    failed: _Count = 0
    cancelled: _Count = 0
    skipped: _Count = 0
    blocked: _Count = 0
    pending: _Count = 0
    held: _Count | msgspec.UnsetType = msgspec.UNSET
    name: Annotated[str, msgspec.Meta(max_length=_NAME_LIMIT)] | msgspec.UnsetType = msgspec.UNSET
    origin: RunOrigin | msgspec.UnsetType = msgspec.UNSET
    graph: Any = msgspec.UNSET
    graph_nodes: _Count | msgspec.UnsetType = msgspec.UNSET
    tasks: Annotated[list[SnapshotTask], msgspec.Meta(max_length=_SNAPSHOT_READ_LIMIT)] = (
        msgspec.field(default_factory=list)
    )


Body: TypeAlias = "LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot"
"""What an :class:`Envelope` carries."""


class Envelope(msgspec.Struct, kw_only=True):
    """The telemetry envelope that carries every body.

    ``seq`` (additive, on ``.../events`` only) numbers a run's events 1, 2, 3, ... in the
    order the engine emitted them, so a reader can count what it missed and tell a copy
    from a new event; engines that do not send it leave it unset, and so is it on heartbeats.

    ``trace_id`` (additive) is the OpenTelemetry trace id of the run (32 lowercase hex
    digits) when the engine traces it: on every message of that run, events and
    heartbeats; unset when the run is not traced and from engines that do not send it.
    """

    v: str = PROTOCOL_VERSION
    ts: str = msgspec.field(default_factory=utc_now_iso)
    run_id: str
    org_id: str
    project_id: str
    source: str
    trace_id: TraceId | msgspec.UnsetType = msgspec.UNSET
    seq: Annotated[int, msgspec.Meta(ge=1)] | msgspec.UnsetType = msgspec.UNSET
    body: LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot


class StatusMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A source's presence: birth (``online``), will and graceful shutdown (``offline``).

    Only ``status`` is required, so messages of older tools decode too.
    ``conflict_session`` (optional, Cascade's own): set on an ``online`` when
    the connector has seen another live connector announce the same source
    id, with that one's session: two engines share the id and their status
    messages hide each other's.
    """

    status: Literal["online", "offline"]
    source: str | None = None
    session: _Count | None = None
    ts: str | None = None
    reason: str | None = None
    conflict_session: _Count | None = None

    @classmethod
    def announce(
        cls,
        status: Literal["online", "offline"],
        source: str,
        session: int,
        reason: str | None = None,
        conflict_session: int | None = None,
    ) -> StatusMessage:
        """A connector's presence message for ``source`` and ``session``, stamped now."""
        return cls(
            status=status,
            source=source,
            session=session,
            ts=utc_now_iso(),
            reason=reason,
            conflict_session=conflict_session,
        )

    def supersedes(self, other: StatusMessage) -> bool:
        """Whether this message should replace ``other`` as the source's current status.

        The one rule of which status message hides which (readers and
        :class:`~cascade.connector_kit.PresenceGuard` both use it):
        an ``offline`` from an older session than the ``online`` already seen
        is a stale will and never marks a live, reconnected source as
        offline; anything else replaces what came before.
        """
        if (
            self.status == "offline"
            and other.status == "online"
            and self.session is not None
            and other.session is not None
        ):
            return self.session >= other.session
        return True


def decode_envelope(data: Mapping[str, Any] | bytes | str) -> Envelope:
    """Decode and validate a telemetry envelope; raises :class:`InvalidMessageError`."""
    return convert(data, Envelope)


def decode_status(data: Mapping[str, Any] | bytes | str) -> StatusMessage:
    """Decode and validate a presence status message; raises :class:`InvalidMessageError`."""
    return convert(data, StatusMessage)
