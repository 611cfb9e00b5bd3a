"""Malformed control messages are rejected, counted and change nothing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from cascade.interfaces import Constraint, Message, constraint_topic
from cascade.runtime import ConstraintManager

MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024  # the protocol's bound, as docs/protocol.md states it

GOOD = {"id": "c", "scope": "global", "type": "concurrency", "params": {"limit": 2}}


def with_(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


BAD: dict[str, bytes] = {
    "not json": b"{not json",
    "not an object": b"[1, 2]",
    "a string": b'"pause"',
    "id not a string": with_(id=7),
    "empty id": with_(id=""),
    "missing scope": json.dumps({"id": "x", "type": "pause"}).encode(),
    "scope not a string": with_(scope=["global"]),
    "negative limit": with_(params={"limit": -1}),
    "non-integer limit": with_(params={"limit": 1.5}),
    "limit as string": with_(params={"limit": "2"}),
    "missing limit": with_(params={}),
    "bad rate": with_(type="rate_limit", params={"rate": "fast"}),
    "zero rate": with_(type="rate_limit", params={"rate": "0/s"}),
    "negative rate": with_(type="rate_limit", params={"rate": -3}),
    "bad capacity": with_(type="rate_limit", params={"rate": "1/s", "capacity": 0}),
    "unknown type": with_(type="throttle"),
    "unknown scope kind": with_(scope="tenant:acme"),
    "empty task glob": with_(scope="task:"),
    "bad expires_at": with_(expires_at="tomorrow"),
    "infinite expires_at": b'{"id":"c","scope":"global","type":"pause","expires_at":1e400}',
    "oversized": with_(id="x", pad="y" * MAX_CONTROL_PAYLOAD_BYTES),
}


def message(topic: str, raw: bytes) -> Message:
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = {}
    return Message(topic=topic, payload=payload if isinstance(payload, dict) else {}, raw=raw)


@pytest.mark.parametrize("raw", BAD.values(), ids=BAD.keys())
def test_bad_message_is_rejected_and_changes_nothing(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Each malformed message is counted and logged; the pause in force stays."""
    manager = ConstraintManager()
    pause = Constraint.pause("global")
    manager.apply(pause, constraint_topic("global", "pause"))
    manager.handle_message(message(constraint_topic("global", "concurrency"), raw))
    manager.handle_message(message(constraint_topic("global", "pause"), raw))
    assert manager.stats.rejected_control == 2
    assert manager.constraints == [pause]
    assert manager.admit("t") == math.inf
    assert "rejected control message" in caplog.text


def test_rejection_warnings_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """A flood of bad messages logs one warning but counts every message."""
    manager = ConstraintManager()
    for _ in range(100):
        manager.handle_message(message("cascade/constraints/global", b"[]"))
    assert manager.stats.rejected_control == 100
    assert caplog.text.count("rejected control message") == 1


def test_valid_message_after_bad_ones_applies() -> None:
    """Bad messages do not stop the manager: a valid one afterwards is applied."""
    manager = ConstraintManager()
    manager.handle_message(message("cascade/constraints/global", b"nope"))
    manager.handle_message(message("cascade/constraints/global", with_()))
    assert [c.limit for c in manager.constraints] == [2]
    assert (manager.stats.rejected_control, manager.stats.accepted) == (1, 1)
