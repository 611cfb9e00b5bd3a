"""The public test double: a FakeBroker behaves as a broker for the connectors handed it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker
from cascade.testkit import Inbox


async def _publish_mixed(broker: FakeBroker, protocol: str) -> list[tuple[str, bytes, int, bool]]:
    """What a connector hands its link for a mix of QoS 0 and 1, retained and not."""
    async with MqttConnector("broker", presence=False, protocol=protocol, link=broker) as c:
        await c.publish("t/a", b"1")
        await c.publish("t/b", b"2" * 300, retain=True)  # a two-byte remaining length
        await c.publish("t/c", b"3", qos=1)
        await c.publish("t/d", b"", qos=1, retain=True)
        await c.flush(5)
    return [(m.topic, m.payload, m.qos, m.retain) for m in broker.link.sent if m.topic[:2] == "t/"]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_batched_writes_read_as_what_was_published(protocol: str) -> None:
    """The sender's own PUBLISH packets are decoded to the same messages as publish() calls."""
    batched = FakeBroker(batches=True)
    assert await _publish_mixed(batched, protocol) == await _publish_mixed(
        FakeBroker(batches=False), protocol
    )
    assert [m.batched for m in batched.link.sent if m.topic == "t/a"] == [True]


@pytest.mark.parametrize("to_wildcards", [True, False])
async def test_connectors_on_one_broker_see_each_others_retained_messages(
    to_wildcards: bool,
) -> None:
    """Retained messages outlive their publisher's connection; wildcards get them if so set."""
    broker = FakeBroker(retained_to_wildcards=to_wildcards)
    async with MqttConnector("broker", presence=False, link=broker) as publisher:
        await publisher.publish("c/x", {"limit": 2}, qos=1, retain=True)
        await publisher.flush(5)
    exact, wide = Inbox(), Inbox()
    for topic_filter, inbox in (("c/x", exact), ("c/+", wide)):  # one reader each
        async with MqttConnector("broker", presence=False, link=broker) as reader:
            await reader.subscribe(topic_filter, inbox)
    assert [m.payload for m in exact.all] == [{"limit": 2}]
    assert [m.payload for m in wide.all] == ([{"limit": 2}] if to_wildcards else [])
    assert [link.closed for link in broker.links] == [True, True, True]


# Run in a fresh interpreter: importing any of these names there raises ImportError.
_WITHOUT_PYTEST_OR_CLIENT = """
import sys
for name in ("pytest", "_pytest", "aiomqtt", "paho"):
    sys.modules[name] = None
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink, Sent
"""


def test_the_doubles_need_no_pytest_nor_an_mqtt_client() -> None:
    """They ship in the wheel, which declares no pytest: importing them must not need it (nor
    aiomqtt or paho: the fake link stands in for the link that uses them)."""
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYTEST_OR_CLIENT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
