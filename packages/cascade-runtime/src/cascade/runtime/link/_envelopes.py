"""A run's events as docs/protocol.md envelopes, encoded: the telemetry's hot path."""

from __future__ import annotations

import traceback
from typing import Any

import msgspec

from cascade.interfaces import LifecycleEvent, SnapshotTask, TaskStateEvent
from cascade.interfaces.wire import (
    SNAPSHOT_TASK_FORMAT,
    RunStatus,
    TaskState,
    envelope_formats,
    truncate_error,
    truncate_traceback,
)

from .._events import (
    RunStarted,
    TaskBlocked,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskHeld,
    TaskMapped,
    TaskRetrying,
    TaskRunning,
    WireEvent,
)
from .._stamp import Stamp

__all__ = ["RunEnvelopes", "event_body", "format_traceback", "task_body"]

_encode = msgspec.json.Encoder().encode
_STATES = {
    state: state.encode()
    for state in ("RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING", "CANCELLED")
}
_BLOCKED = _STATES["BLOCKED"]
_COMPLETED = _STATES["COMPLETED"]
_CANCELLED = _STATES["CANCELLED"]
_FAILED = _STATES["FAILED"]
_RETRYING = _STATES["RETRYING"]
_RUNNING = _STATES["RUNNING"]
_ENTRY = SNAPSHOT_TASK_FORMAT


class RunEnvelopes:
    """Encodes one run's messages: its ids (and trace id) encoded once, each event's fields
    formatted straight into the protocol's wire templates (:mod:`cascade.interfaces.wire`)
    where it can be."""

    def __init__(
        self, run_id: str, org_id: str, project_id: str, source: str, trace_id: str | None
    ) -> None:
        formats = envelope_formats(run_id, org_id, project_id, source, trace_id)
        self.format = formats.plain
        self._event_format = formats.event
        self._task_format = formats.task
        self.stamp = Stamp()
        self._old_stamp = Stamp()  # for the events a snapshot lists: the hot path's stays warm
        self._names: dict[str, bytes] = {}

    def envelope(self, body: msgspec.Struct, ts: float, seq: int | None = None) -> bytes:
        """The encoded envelope of ``body`` at ``ts`` (epoch seconds), with ``seq`` if given."""
        second, micro = self.stamp(ts)
        if seq is None:
            return self.format % (second, micro, _encode(body))
        return self._event_format % (second, micro, seq, _encode(body))

    def task_envelope(self, event: TaskEvent, seq: int) -> bytes:
        """The encoded envelope of a task event, the run's event number ``seq``.

        :meth:`envelope` of its TaskStateEvent, faster: this is the telemetry hot
        path (two or more events per task), hence the inlining.
        """
        name = self._names.get(event.task_name)
        if name is None:
            name = self._names[event.task_name] = _encode(event.task_name)
        ts = event.ts
        second = int(ts)
        stamp = self.stamp
        prefix = stamp.prefix if second == stamp.whole_second else stamp(ts)[0]
        kind = type(event)
        # a task's start and end (nearly every event) settle what the template writes first
        if kind is TaskRunning:
            state = _RUNNING
            rare = event.decided is not None
        elif kind is TaskCompleted:
            state = _COMPLETED
            rare = (
                event.decided is not None
                or event.reused_from is not None  # type: ignore[attr-defined]
                or event.not_kept is not None  # type: ignore[attr-defined]
            )
        else:
            state = _STATES[event.state]
            rare = (
                (state is _BLOCKED and isinstance(event, TaskBlocked) and bool(event.held_by))
                or state is _CANCELLED
                or ((state is _FAILED or state is _RETRYING) and _failure(event) is not None)
                or event.decided is not None
                or (state is _COMPLETED and _rare_completed(event))
                or (state is _RUNNING and kind is TaskMapped)
            )
        if rare:
            return self._event_format % (
                prefix,
                int((ts - second) * 1_000_000),
                seq,
                _encode(task_body(event)),
            )
        error = event.error
        duration = event.duration_ms
        return self._task_format % (
            prefix,
            int((ts - second) * 1_000_000),
            seq,
            _encode(event.task_id),
            name,
            state,
            _encode(duration) if duration else b"0.0",  # an attempt's start: 0.0
            _encode(truncate_error(error)) if error else b'""',
        )

    def snapshot_entry(self, seq: int, event: TaskEvent, items: int | None = None) -> bytes:
        """One task of a snapshot, encoded: :class:`SnapshotTask` of its latest event, formatted
        straight, as :meth:`task_envelope` does, but for those with more fields; ``items``: a
        map's own task's, how many items it made."""
        state = _STATES[event.state]
        second, micro = self._old_stamp(event.ts)
        if (
            items is not None
            or state is _CANCELLED
            or (state is _BLOCKED and getattr(event, "held_by", None))
            or (state is _COMPLETED and _rare_completed(event))
        ):
            ts = f"{second.decode()}.{micro:06d}+00:00"
            return _encode(_snapshot_struct(seq, event, ts, items))
        name = self._names.get(event.task_name)
        if name is None:
            name = self._names[event.task_name] = _encode(event.task_name)
        error = event.error
        return _ENTRY % (
            seq,
            second,
            micro,
            _encode(event.task_id),
            name,
            state,
            _encode(event.duration_ms),
            _encode(truncate_error(error)) if error else b'""',
        )


def task_body(event: TaskEvent) -> TaskStateEvent:
    """A task event's body on the wire (a cancelled task: ``FAILED``, ``cancelled``)."""
    held = event.held_by if isinstance(event, TaskBlocked) and event.held_by else None
    cancelled = event.state == "CANCELLED"  # FAILED on the wire, which every reader knows
    state: TaskState = "FAILED" if event.state == "CANCELLED" else event.state
    failure = _failure(event)
    return TaskStateEvent(
        task_id=event.task_id,
        task_name=event.task_name,
        state=state,
        duration_ms=event.duration_ms,
        error=truncate_error(event.error),
        held_by=list(held) if held else msgspec.UNSET,
        cancelled=True if cancelled else msgspec.UNSET,
        traceback=msgspec.UNSET if failure is None else format_traceback(failure),
        decided=msgspec.UNSET if event.decided is None else event.decided,
        items=event.items if isinstance(event, TaskMapped) else msgspec.UNSET,
        **_completed_fields(event),
    )


def _rare_completed(event: TaskEvent) -> bool:
    """A COMPLETED event with a field the byte template does not write."""
    return isinstance(event, TaskCompleted) and (
        event.reused_from is not None or event.not_kept is not None or event.cached
    )


def _completed_fields(event: TaskEvent) -> dict[str, Any]:
    if not isinstance(event, TaskCompleted):
        return {}
    fields: dict[str, Any] = {}
    if event.cached:
        fields["cached"] = True
    if event.reused_from is not None:
        fields["reused_from"] = event.reused_from
    if event.not_kept is not None:
        fields["not_kept"] = event.not_kept[:1024]
    return fields


def format_traceback(exception: BaseException) -> str:
    """What ``exception`` raised where, as Python prints it, bounded for the wire."""
    return truncate_traceback("".join(traceback.format_exception(exception)))


def _failure(event: TaskEvent) -> BaseException | None:
    """What a failed attempt raised (a FAILED, RETRYING or held BLOCKED event's), else ``None``."""
    return event.exception if isinstance(event, TaskFailed | TaskRetrying | TaskHeld) else None


def event_body(event: WireEvent) -> tuple[int, msgspec.Struct]:
    """An event's QoS and body on the wire."""
    if isinstance(event, TaskEvent):
        return 0, task_body(event)
    if isinstance(event, RunStarted):
        graph = event.graph
        return 1, LifecycleEvent(
            event="ENGINE_STARTED",
            tasks=event.task_count,
            name=event.name,
            origin=event.origin,
            graph=graph,
            graph_nodes=event.task_count if graph is None else None,
        )
    # docs/protocol.md knows Succeeded and Failed only: a cancelled run is Failed, cancelled
    status: RunStatus = "Succeeded" if event.status == "Succeeded" else "Failed"
    return 1, LifecycleEvent(
        event="ENGINE_STOPPED",
        status=status,
        error=truncate_error(event.error),
        cancelled=True if event.status == "Cancelled" else None,
        log_lines=event.log_lines or None,  # none logged: left out (nothing to miss)
    )


def _snapshot_struct(seq: int, event: TaskEvent, ts: str, items: int | None) -> SnapshotTask:
    body = task_body(event)
    return SnapshotTask(
        seq=seq,
        ts=ts,
        task_id=body.task_id,
        task_name=body.task_name,
        state=body.state,
        duration_ms=body.duration_ms,
        error=body.error,
        held_by=body.held_by,
        cancelled=body.cancelled,
        reused_from=body.reused_from,
        cached=body.cached,
        items=msgspec.UNSET if items is None else items,
    )
