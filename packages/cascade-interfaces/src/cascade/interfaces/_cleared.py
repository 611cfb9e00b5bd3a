"""Who cleared a constraint and why: the note a writer publishes beside a clear.

A clear is an empty retained payload (MQTT deletes a retained message no other
way), so it cannot say who sent it. A writer that knows (`cascade resume --as
bob --reason ...`, the dashboard) publishes, once the clear is confirmed, a
:class:`ClearNote` to :func:`cleared_topic` of the constraint's topic: not
retained, read by the history's recorder, ignored by engines (which never
subscribe there) and by tools that do not know it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._topics import DEFAULT_PREFIX

__all__ = [
    "ClearNote",
    "cleared_filter",
    "cleared_topic",
    "constraint_topic_of_note",
    "decode_clear_note",
]

_CONSTRAINTS = "/constraints/"
_CLEARED = "/cleared/"


class ClearNote(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Who cleared the constraint on the note's topic, why, and when (epoch seconds);
    each optional. ``issued_by`` is what the writer claims, as a constraint's is."""

    issued_by: str | None = None
    reason: str | None = None
    issued_at: Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)] | None = None


def cleared_topic(constraint_topic: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The note topic of ``constraint_topic``: ``{prefix}/cleared/...`` for
    ``{prefix}/constraints/...``; ``ValueError`` for a topic that is no constraint's."""
    head = prefix + _CONSTRAINTS
    if not constraint_topic.startswith(head):
        raise ValueError(f"not a constraint topic under {prefix!r}: {constraint_topic!r}")
    return prefix + _CLEARED + constraint_topic[len(head) :]


def constraint_topic_of_note(note_topic: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The constraint topic a note topic names (the inverse of :func:`cleared_topic`)."""
    head = prefix + _CLEARED
    if not note_topic.startswith(head):
        raise ValueError(f"not a clear note's topic under {prefix!r}: {note_topic!r}")
    return prefix + _CONSTRAINTS + note_topic[len(head) :]


def cleared_filter(prefix: str = DEFAULT_PREFIX) -> str:
    """The filter over every clear note."""
    return prefix + _CLEARED + "#"


def decode_clear_note(data: Mapping[str, Any] | bytes | str) -> ClearNote:
    """Decode an untrusted clear note; :class:`InvalidMessageError` if it is none (too large,
    not an object, a field of the wrong type)."""
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"clear note is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    return convert(data, ClearNote)
