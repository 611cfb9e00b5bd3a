"""A filter RabbitMQ's topic permissions deny: RabbitMQ 3.x closes the connection on its SUBSCRIBE
(no 0x80 SUBACK). The connector gives that filter up after a few connections and keeps every
other subscription working, instead of reconnecting and being closed again for ever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.testkit import BrokerEndpoint, RabbitMQBroker, only_on_family, rabbitmq_user

MAX_LOSSES = 3


async def eventually(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def _definitions(user: str, prefix: str) -> dict[str, object]:
    """``user`` may read anything but ``{prefix}/command/...``."""
    return {
        "users": [rabbitmq_user(user, "pw")],
        "permissions": [
            {"user": user, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
        "topic_permissions": [
            {
                "user": user,
                "vhost": "/",
                "exchange": "amq.topic",
                "write": ".*",
                "read": f"^(?!{prefix}\\.command\\.).*",  # MQTT's '/' is AMQP's '.'
            }
        ],
    }


@only_on_family("rabbitmq", "it adds a user with topic permissions to the RabbitMQ node")
async def test_a_denied_filter_is_given_up_and_the_other_subscriptions_work(
    mqtt_broker: BrokerEndpoint, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Subscribed before connect() with an allowed filter: the denied one is given up, warned
    once and counted; the allowed one receives; subscribing to the denied one again returns."""
    assert isinstance(mqtt_broker, RabbitMQBroker)
    denied = f"{prefix}/command/+/cancel"
    broker = mqtt_broker
    user = f"mallory-{prefix}"  # the node is the session's: a user of this test's own
    broker.add_definitions(_definitions(user, prefix))
    connector = MqttConnector(
        broker.host,
        broker.port,
        username=user,
        password="pw",
        topic_prefix=prefix,
        source_id="mallory",
        connect_timeout=2,
        backoff_initial=0.01,
        backoff_max=0.1,
    )
    guest = MqttConnector(
        broker.host, broker.port, username="guest", password="guest", topic_prefix=prefix
    )
    got: list[Message] = []
    await connector.subscribe(f"{prefix}/ok/#", got.append)
    await connector.subscribe(denied, got.append)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        await guest.connect(require=True)
        try:
            await eventually(
                lambda: connector.stats.subscriptions_given_up == 1, f"{denied} given up"
            )
            assert await connector.wait_connected(10)
            async with bounded(2 * connector.connect_timeout):
                await connector.subscribe(denied, got.append)
            await guest.publish(f"{prefix}/command/e1/cancel", {"denied": 1}, qos=1)
            await guest.publish(f"{prefix}/ok/1", {"ok": 1}, qos=1)
            await guest.flush(5)
            await eventually(lambda: got, "the allowed filter's message", timeout=10)
            assert connector.is_connected
        finally:
            await guest.disconnect()
            await connector.disconnect()
    assert [m.topic for m in got] == [f"{prefix}/ok/1"]
    assert connector.stats.subscriptions_given_up == 1
    assert connector.stats.reconnects == MAX_LOSSES + 1  # all at once, then alone each time
    warnings = [
        r.getMessage() for r in caplog.records if "gave up the subscription" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert repr(denied) in warnings[0]
    assert "does its ACL deny this client that filter?" in warnings[0]
