"""How large a message a reader accepts, by kind, and how long an error an engine sends.

Readers (engines, ``cascade status``/``watch``, the dashboard) reject a payload
over its kind's bound before decoding it, and count the rejection: no sender
can make a reader slow or big. Cascade's engines stay well inside them.
"""

from __future__ import annotations

__all__ = [
    "MAX_CONTROL_PAYLOAD_BYTES",
    "MAX_NUMBER",
    "MAX_ERROR_LENGTH",
    "MAX_LOG_PAYLOAD_BYTES",
    "MAX_SIGNAL_PAYLOAD_BYTES",
    "MAX_STATUS_PAYLOAD_BYTES",
    "MAX_SUMMARY_PAYLOAD_BYTES",
    "MAX_TELEMETRY_PAYLOAD_BYTES",
    "MAX_TRACEBACK_LENGTH",
    "payload_limit",
    "truncate_error",
    "truncate_traceback",
]

MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024
"""Control payloads larger than this are rejected before they are parsed."""

MAX_STATUS_PAYLOAD_BYTES = 16 * 1024
"""Status (presence) payloads larger than this are rejected before they are parsed."""

MAX_TELEMETRY_PAYLOAD_BYTES = 256 * 1024
"""Telemetry payloads (events, heartbeats) larger than this are rejected before they are parsed."""

MAX_LOG_PAYLOAD_BYTES = 256 * 1024
"""Task log batches (``{prefix}/logs/...``) larger than this are rejected before they are
parsed."""

MAX_SIGNAL_PAYLOAD_BYTES = 64 * 1024
"""Signals (``{prefix}/signal/...``, what ``cs.recv`` waits for) larger than this are not
taken."""

MAX_SUMMARY_PAYLOAD_BYTES = 64 * 1024
"""Engine summary payloads larger than this are rejected before they are parsed."""

MAX_NUMBER = 1e15
"""The bound of every number a message carries, so that infinities are rejected."""

MAX_ERROR_LENGTH = 16 * 1024
"""Characters of a task's or run's error an engine sends; a longer one is cut, and says so."""

MAX_TRACEBACK_LENGTH = 8 * 1024
"""Characters of a failed attempt's traceback an engine sends; a longer one is cut in the
middle, and says so. With :data:`MAX_ERROR_LENGTH`, a task's event stays well inside
:data:`MAX_TELEMETRY_PAYLOAD_BYTES` however its characters are encoded (six bytes each at
most)."""

_TRACEBACK_HEAD = MAX_TRACEBACK_LENGTH // 4

_LIMITS = {
    "cleared": MAX_CONTROL_PAYLOAD_BYTES,
    "issued": MAX_CONTROL_PAYLOAD_BYTES,
    "constraints": MAX_CONTROL_PAYLOAD_BYTES,
    "reply": MAX_CONTROL_PAYLOAD_BYTES,
    "served": MAX_CONTROL_PAYLOAD_BYTES,
    "start": MAX_CONTROL_PAYLOAD_BYTES,
    "logs": MAX_LOG_PAYLOAD_BYTES,
    "signal": MAX_SIGNAL_PAYLOAD_BYTES,
    "status": MAX_STATUS_PAYLOAD_BYTES,
    "summary": MAX_SUMMARY_PAYLOAD_BYTES,
    "telemetry": MAX_TELEMETRY_PAYLOAD_BYTES,
}


def payload_limit(kind: str) -> int | None:
    """The bound for a topic's kind (its level after the prefix), ``None`` for other kinds."""
    return _LIMITS.get(kind)


def truncate_error(error: str) -> str:
    """``error`` cut to :data:`MAX_ERROR_LENGTH` characters, saying how many were left out."""
    if len(error) <= MAX_ERROR_LENGTH:
        return error
    return f"{error[:MAX_ERROR_LENGTH]}… ({len(error) - MAX_ERROR_LENGTH} more characters)"


def truncate_traceback(traceback: str) -> str:
    """``traceback`` cut to about :data:`MAX_TRACEBACK_LENGTH` characters, saying how many were
    left out: its start (where the failure began) and its end (the raising line and the
    exception) are kept, the frames between are dropped."""
    if len(traceback) <= MAX_TRACEBACK_LENGTH:
        return traceback
    tail = MAX_TRACEBACK_LENGTH - _TRACEBACK_HEAD
    left_out = len(traceback) - MAX_TRACEBACK_LENGTH
    return f"{traceback[:_TRACEBACK_HEAD]}\n… ({left_out} more characters)\n{traceback[-tail:]}"
