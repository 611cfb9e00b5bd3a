"""Snapshot requests: their topics and strict decoding."""

from __future__ import annotations

import pytest

from cascade.interfaces import InvalidMessageError, snapshot_topic
from cascade.interfaces.commands import decode_snapshot_request, snapshot_request_topic


def test_topics() -> None:
    """Requests go to the run's command topic, answers to its telemetry's snapshot topic."""
    assert snapshot_request_topic("r1", "p") == "p/command/r1/snapshot"
    assert snapshot_topic("o", "pr", "r/1", "p") == "p/telemetry/o/pr/r%2F1/snapshot"


@pytest.mark.parametrize(
    "payload",
    [b"{", b"[]", b'{"run_id": ""}', b'{"run_id": "r", "after": -1}', b"x" * 70_000],
)
def test_malformed_requests_are_refused(payload: bytes) -> None:
    """Not JSON, not an object, an empty run id, a negative after, over 64 KiB: refused."""
    with pytest.raises(InvalidMessageError):
        decode_snapshot_request(payload)
