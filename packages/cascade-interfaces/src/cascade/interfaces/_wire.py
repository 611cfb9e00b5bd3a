"""The wire format's fast paths: byte templates of the schemas' encodings, kept beside them.

An engine formats its busiest messages (a task's events, the tasks of a snapshot) straight
into bytes with these templates instead of building the schema's struct and encoding it:
the same bytes, several times faster. They live here, beside the structs
(:class:`~cascade.interfaces.Envelope`, :class:`~cascade.interfaces.TaskStateEvent`,
:class:`~cascade.interfaces.SnapshotTask`, :class:`~cascade.interfaces.RunSnapshot`), so that
the wire format has one owner; this package's tests check each template's output against
msgspec's encoding of the same values, and that it writes every field of its struct but
those it leaves to the struct's own encoding, so a field added to a schema without its
template fails them.

A template is filled with ``%``: bytes already JSON-encoded (``%b``) and numbers (``%d``);
a timestamp is its ``YYYY-MM-DDTHH:MM:SS`` part (bytes) and its microseconds (``%b.%06d``),
written in UTC as the protocol does (``+00:00``).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from ._schemas import PROTOCOL_VERSION

__all__ = [
    "LOG_LINE_FORMAT",
    "SNAPSHOT_TASK_FORMAT",
    "EnvelopeFormats",
    "envelope_formats",
    "log_batch_format",
    "log_line_fields",
    "snapshot_with_tasks",
]

_encode = msgspec.json.Encoder().encode

SNAPSHOT_TASK_FORMAT = (
    b'{"seq":%d,"ts":"%b.%06d+00:00","task_id":%b,"task_name":%b,"state":"%b",'
    b'"duration_ms":%b,"error":%b}'
)
"""A :class:`~cascade.interfaces.SnapshotTask` without ``held_by`` and ``cancelled``, filled
with its ``seq``, ``ts`` (second, microseconds), and its encoded ``task_id``, ``task_name``,
``state`` (unquoted), ``duration_ms`` and ``error``."""

_EMPTY_TASKS = b'"tasks":[]}'


class EnvelopeFormats(NamedTuple):
    """One run's :class:`~cascade.interfaces.Envelope` templates (its ids pre-encoded), each
    filled first with the message's ``ts`` (second, microseconds)."""

    plain: bytes
    """An envelope without ``seq`` (a heartbeat, a snapshot): then its encoded ``body``."""
    event: bytes
    """An event's envelope: then its ``seq`` and its encoded ``body``."""
    task: bytes
    """A task's event, its :class:`~cascade.interfaces.TaskStateEvent` without ``held_by``
    and ``cancelled`` formatted in: then its ``seq`` and its encoded ``task_id``,
    ``task_name``, ``state`` (unquoted), ``duration_ms`` and ``error``."""


def envelope_formats(
    run_id: str, org_id: str, project_id: str, source: str, trace_id: str | None = None
) -> EnvelopeFormats:
    """The envelope templates of one run's messages from ``source`` (with ``trace_id``, the
    run's OpenTelemetry trace id, in every one: at no cost per message)."""
    head = (
        b'{"v":%b,"ts":"%%b.%%06d+00:00","run_id":%b,"org_id":%b,"project_id":%b,"source":%b,'
        % (
            tuple(
                _encode(value).replace(b"%", b"%%")
                for value in (PROTOCOL_VERSION, run_id, org_id, project_id, source)
            )
        )
    )
    if trace_id is not None:
        head += b'"trace_id":%b,' % _encode(trace_id).replace(b"%", b"%%")
    return EnvelopeFormats(
        plain=head + b'"body":%b}',
        event=head + b'"seq":%d,"body":%b}',
        task=head + b'"seq":%d,"body":{"type":"TaskStateEvent","task_id":%b,"task_name":%b,'
        b'"state":"%b","duration_ms":%b,"error":%b}}',
    )


def snapshot_with_tasks(snapshot: bytes, tasks: list[bytes]) -> bytes:
    """An encoded :class:`~cascade.interfaces.RunSnapshot` whose ``tasks`` (the last field,
    empty in ``snapshot``) are the encoded ``tasks`` (:data:`SNAPSHOT_TASK_FORMAT`'s, or
    encoded :class:`~cascade.interfaces.SnapshotTask` structs)."""
    if not snapshot.endswith(_EMPTY_TASKS):
        raise ValueError("the snapshot must end with its empty list of tasks")
    return snapshot[:-2] + b",".join(tasks) + b"]}"


LOG_LINE_FORMAT = b'{"ts":"%b.%06d+00:00",%b"n":%d,"level":"%b","logger":%b,"message":%b}'
"""A :class:`~cascade.interfaces.logs.LogLine`, filled with its ``ts`` (second, microseconds), its
attempt's fields (:func:`log_line_fields`, then ``"stream"`` and ``"level_number"`` where
it has them, each ending with a comma), its ``n``, its ``level`` (unquoted) and its encoded
``logger`` and ``message``."""


def log_line_fields(
    task_id: str,
    task_name: str,
    attempt: int,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> bytes:
    r"""The fields one attempt's :class:`~cascade.interfaces.logs.LogLine`\ s share, encoded, each
    ending with a comma (what :data:`LOG_LINE_FORMAT` takes as its third value)."""
    fields = b'"task_id":%b,"task_name":%b,"attempt":%d,' % (
        _encode(task_id),
        _encode(task_name),
        attempt,
    )
    if trace_id is not None:
        fields += b'"trace_id":%b,' % _encode(trace_id)
    if span_id is not None:
        fields += b'"span_id":%b,' % _encode(span_id)
    return fields


def log_batch_format(run_id: str, org_id: str, project_id: str, source: str) -> bytes:
    """One run's :class:`~cascade.interfaces.logs.LogBatch` template (its ids pre-encoded), filled
    with its ``seq``, ``ts`` (second, microseconds), its lines encoded and joined with commas,
    and its encoded ``dropped``."""
    return (
        b'{"v":%b,"run_id":%b,"org_id":%b,"project_id":%b,"source":%b,'
        % tuple(
            _encode(value).replace(b"%", b"%%")
            for value in (PROTOCOL_VERSION, run_id, org_id, project_id, source)
        )
        + b'"seq":%d,"ts":"%b.%06d+00:00","lines":[%b],"dropped":%b}'
    )
