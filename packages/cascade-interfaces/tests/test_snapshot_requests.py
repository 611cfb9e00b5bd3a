"""Snapshot requests: their topics and strict decoding."""

from __future__ import annotations

from cascade.interfaces import snapshot_topic
from cascade.interfaces.commands import snapshot_request_topic


def test_topics() -> None:
    """Requests go to the run's command topic, answers to its telemetry's snapshot topic."""
    assert snapshot_request_topic("r1", "p") == "p/command/r1/snapshot"
    assert snapshot_topic("o", "pr", "r/1", "p") == "p/telemetry/o/pr/r%2F1/snapshot"
