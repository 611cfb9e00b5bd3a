"""A cancel's answer: what an engine before the echo sent still decodes; the echo of who, why
and when is strict; every answer topic is under the reply filter."""

from __future__ import annotations

import msgspec
import pytest

from cascade.interfaces import InvalidMessageError, topic_matches
from cascade.interfaces.commands import (
    CancelReply,
    cancel_topic,
    decide_topic,
    decode_cancel_reply,
    reply_filter,
    reply_topic,
)

MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024  # the protocol's bound, as docs/protocol.md states it

EARLIER = {"id": "r1", "run_id": "a" * 32, "source": "host-1", "not_started": 2}


def test_an_answer_without_the_echo_decodes_as_before() -> None:
    """An earlier engine's answer: who, why and when are None, and left out when encoded."""
    reply = decode_cancel_reply(EARLIER)
    assert (reply.issued_by, reply.reason, reply.issued_at) == (None, None, None)
    assert msgspec.json.decode(msgspec.json.encode(reply)) == EARLIER


def test_the_echo_is_decoded_strictly() -> None:
    """Who, why and when round-trip; a wrong type or an infinite time is refused."""
    said = CancelReply(id="r1", run_id="r", source="s", issued_by="al", reason="x", issued_at=5.0)
    assert decode_cancel_reply(msgspec.json.encode(said)) == said
    wrong: list[dict[str, object]] = [
        {"issued_by": 3},
        {"reason": []},
        {"issued_at": 1e300},
        {"issued_at": -1},
    ]
    for bad in wrong:
        with pytest.raises(InvalidMessageError):
            decode_cancel_reply({**EARLIER, **bad})


@pytest.mark.parametrize("prefix", ["cascade", "acme/prod"])
def test_every_answer_is_under_the_reply_filter(prefix: str) -> None:
    """Three levels below ``{prefix}/reply``: the run's org (encoded, as a broker ACL binds
    it), the request's id, the answering source; answers are bounded as control payloads are."""
    topic = reply_topic("acme/x", "9f1c", "host/1", prefix)
    assert topic == f"{prefix}/reply/acme%2Fx/9f1c/host%2F1"
    assert topic_matches(reply_filter(prefix=prefix), topic)
    assert topic_matches(reply_filter("9f1c", prefix), topic)
    assert topic_matches(reply_filter("9f1c", prefix, "acme/x"), topic)
    assert not topic_matches(reply_filter("9f1c", prefix, "globex"), topic)
    assert not topic_matches(reply_filter("9f1d", prefix), topic)
    assert not topic_matches(reply_filter(prefix=prefix), f"{prefix}/reply/a/b")
    assert not topic_matches(reply_filter(prefix=prefix), f"{prefix}/reply/a/b/c/d")


def test_a_command_topic_names_the_runs_org_and_project() -> None:
    """Cancels and decisions go on {prefix}/command/{org}/{project}/{run_id}/{kind}, each id
    encoded."""
    run = "58a88765cea2c1d0a1f3c2b7e9d84a61"
    assert cancel_topic("acme", "etl", run) == f"cascade/command/acme/etl/{run}/cancel"
    assert decide_topic("a.b", "x y", run, "p/q") == f"p/q/command/a%2Eb/x%20y/{run}/decide"
