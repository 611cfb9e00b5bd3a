"""Served workflows' messages: what decodes, what is refused, and the topics."""

from __future__ import annotations

import msgspec
import pytest

from cascade.interfaces import InvalidMessageError, LifecycleEvent, decode_envelope
from cascade.interfaces.serving import (
    RunOrigin,
    StartReply,
    addressed_start_topic,
    decode_served,
    decode_start_reply,
    served_filter,
    served_topic,
    start_topic,
)


def test_announcement_and_reply_round_trip() -> None:
    served = decode_served(
        {
            "source": "w1",
            "org_id": "acme",
            "project_id": "etl",
            "capacity": 2,
            "workflows": [{"name": "nightly", "params": [{"name": "day", "required": True}]}],
            "shared": True,
        }
    )
    assert served.workflows[0].params[0].name == "day"
    with pytest.raises(InvalidMessageError, match="capacity"):
        decode_served({"source": "w1", "org_id": "o", "project_id": "p", "workflows": []})
    reply = StartReply(id="r1", source="w1", workflow="nightly", outcome="started", run_id="ab")
    assert decode_start_reply(msgspec.json.encode(reply)) == reply
    assert reply.started


def test_topics_and_names() -> None:
    """Every topic of serving names its org and project, encoded, so an ACL binds each org's."""
    assert served_topic("acme", "team.one", "w/1") == "cascade/served/acme/team%2Eone/w%2F1"
    assert served_filter() == "cascade/served/+/+/+"
    assert served_filter(org_id="acme", project_id="team.one") == "cascade/served/acme/team%2Eone/+"
    assert start_topic("a+b", "etl", "nightly") == "cascade/start/a%2Bb/etl/nightly"
    assert addressed_start_topic("acme", "etl", "nightly", "w1", "p") == (
        "p/start/acme/etl/nightly/w1"
    )


def test_a_run_started_carries_its_name_and_origin_additively() -> None:
    body = LifecycleEvent(
        event="ENGINE_STARTED",
        tasks=3,
        name="nightly",
        origin=RunOrigin(workflow="nightly", params={"day": 1}, rerun_of="a" * 32),
    )
    envelope = {
        "run_id": "b" * 32,
        "org_id": "o",
        "project_id": "p",
        "source": "w1",
        "body": msgspec.to_builtins(body),
    }
    decoded = decode_envelope(msgspec.json.encode(envelope))
    assert decoded.body == body
    # A reader that knows only the old fields still decodes it (unknown fields ignored).
    old = msgspec.json.decode(msgspec.json.encode(envelope))
    assert old["body"]["event"] == "ENGINE_STARTED"
