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
    "SNAPSHOT_TASK_FORMAT",
    "EnvelopeFormats",
    "envelope_formats",
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
