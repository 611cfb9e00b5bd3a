"""Messages as a reader's callback receives them, for tests of readers."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import msgspec

from cascade.interfaces import (
    Envelope,
    Heartbeat,
    Message,
    Payload,
    RunSnapshot,
    encode_payload,
    events_topic,
    heartbeat_topic,
    snapshot_topic,
)
from cascade.interfaces.wire import Body

__all__ = ["received", "telemetry"]


def received(topic: str, payload: Payload | None, *, retain: bool = False) -> Message:
    """``payload`` on ``topic`` as a subscription callback gets it: encoded as a publisher
    sends it, then decoded, with its bytes (``None``: an empty payload, as a clear)."""
    raw = encode_payload(payload) if payload is not None else b""
    decoded = json.loads(raw) if raw else {}
    return Message(topic=topic, payload=decoded, raw=raw, retain=retain)


def telemetry(
    body: Body,
    *,
    run_id: str = "run-1",
    source: str = "host-1",
    seq: int | None = None,
    ts: datetime | None = None,
    org_id: str = "local",
    project_id: str = "default",
    sourced: bool = False,
) -> Message:
    """One envelope of a run's telemetry as received, on its kind's topic (a heartbeat's, a
    snapshot's, else the events'), stamped ``ts`` (now by default) and numbered ``seq`` if
    given; ``sourced``: on the sourced layout, ``source`` as the topic's last level."""
    envelope = Envelope(
        run_id=run_id,
        org_id=org_id,
        project_id=project_id,
        source=source,
        body=body,
        ts=(ts or datetime.now(timezone.utc)).isoformat(),
        seq=msgspec.UNSET if seq is None else seq,
    )
    if isinstance(body, Heartbeat):
        kind = heartbeat_topic
    elif isinstance(body, RunSnapshot):
        kind = snapshot_topic
    else:
        kind = events_topic
    topic = kind(org_id, project_id, run_id, source=source if sourced else None)
    return received(topic, envelope)
