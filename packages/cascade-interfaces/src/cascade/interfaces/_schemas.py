"""The wire protocol's message schemas (PROTOCOL.md), with strict decoding of untrusted input.

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
from ._holds import BlockedTasks, Holds
from ._limits import MAX_NUMBER

__all__ = [
    "PROTOCOL_VERSION",
    "Body",
    "Envelope",
    "Heartbeat",
    "LifecycleEvent",
    "LifecycleName",
    "RunStatus",
    "StatusMessage",
    "TaskState",
    "TaskStateEvent",
    "TraceId",
    "decode_envelope",
    "decode_status",
    "utc_now_iso",
]

PROTOCOL_VERSION = "1.0"
_MAX_NUMBER = MAX_NUMBER

TaskState: TypeAlias = Literal["RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING"]
LifecycleName: TypeAlias = Literal["ENGINE_STARTED", "ENGINE_STOPPED"]
RunStatus: TypeAlias = Literal["Succeeded", "Failed"]

_Count = Annotated[int, msgspec.Meta(ge=0)]
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
    """

    event: LifecycleName
    status: RunStatus | None = None
    error: str | None = None
    tasks: _Count | None = None
    cancelled: bool | None = None


class TaskStateEvent(msgspec.Struct, tag="TaskStateEvent", tag_field="type", kw_only=True):
    """A task entered ``state``. ``error`` is ``"ExcType: message"``, or ``""`` when none.

    ``held_by`` (additive, on ``BLOCKED`` only; unset elsewhere and from engines that
    do not send it) names what holds the task back: :class:`Hold` each.
    """

    task_id: str
    task_name: str
    state: TaskState
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=_MAX_NUMBER)] = 0.0
    error: str = ""
    held_by: Holds | msgspec.UnsetType = msgspec.UNSET


class Heartbeat(msgspec.Struct, tag="Heartbeat", tag_field="type", kw_only=True):
    """Periodic counters of a run, published on the run's ``.../heartbeat`` topic."""

    running: _Count = 0
    completed: _Count = 0
    failed: _Count = 0
    skipped: _Count = 0
    blocked: _Count = 0
    pending: _Count = 0
    dropped_telemetry: _Count = 0
    last_seq: _Count | msgspec.UnsetType = msgspec.UNSET
    """The ``seq`` of the run's latest event before this heartbeat (additive; see Envelope)."""
    blocked_tasks: BlockedTasks | msgspec.UnsetType = msgspec.UNSET
    """The tasks blocked now, each with what holds it now (additive; at most
    :data:`~cascade.interfaces.MAX_BLOCKED_TASKS`; unset when none is blocked)."""


Body: TypeAlias = "LifecycleEvent | TaskStateEvent | Heartbeat"


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
    body: LifecycleEvent | TaskStateEvent | Heartbeat


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
        :class:`~cascade.interfaces.connector_kit.PresenceGuard` both use it):
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
