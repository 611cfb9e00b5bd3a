"""The clear note: its topic beside the constraint's, and strict decoding of untrusted ones."""

from __future__ import annotations

import pytest

from cascade.interfaces import InvalidMessageError, constraint_topic, topic_matches
from cascade.interfaces.notes import ClearNote, cleared_filter, cleared_topic, decode_clear_note

MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024  # the protocol's bound, as docs/protocol.md states it


@pytest.mark.parametrize("prefix", ["cascade", "acme/prod"])
def test_a_note_topic_names_its_constraint_topic(prefix: str) -> None:
    """constraint → note → constraint, under any prefix; the filter matches every note."""
    topic = constraint_topic("task:api_*", "pause", prefix)
    note = cleared_topic(topic, prefix)
    assert note == f"{prefix}/cleared/task/api_%2A/pause"
    assert topic_matches(cleared_filter(prefix), note)
    assert not topic_matches(cleared_filter(prefix), topic)


def test_topics_of_other_kinds_are_refused() -> None:
    """Only a constraint topic has a note topic, and only a note topic names one."""
    with pytest.raises(ValueError, match="not a constraint topic"):
        cleared_topic("cascade/status/host-1")


def test_decoding_is_strict_and_bounded() -> None:
    """Every field optional; a wrong type or an oversized payload is an InvalidMessageError."""
    assert decode_clear_note({}) == ClearNote()
    note = decode_clear_note(b'{"issued_by": "bob", "reason": "done", "issued_at": 1.5}')
    assert note == ClearNote(issued_by="bob", reason="done", issued_at=1.5)
    with pytest.raises(InvalidMessageError):
        decode_clear_note({"issued_by": 7})
    with pytest.raises(InvalidMessageError):
        decode_clear_note({"issued_at": -1})
    with pytest.raises(InvalidMessageError, match="at most"):
        decode_clear_note(b" " * (MAX_CONTROL_PAYLOAD_BYTES + 1))
