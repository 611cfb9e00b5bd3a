"""A persistent session (``client_id`` and ``session_expiry``): the broker keeps the QoS 1
messages published while the client was away, and a new process with the same client id gets
them on connecting, through the subscriptions it made before ``connect()``."""

from __future__ import annotations

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.testkit import BrokerEndpoint, Inbox

_PROTOCOLS = [
    pytest.param("3.1.1", id="mqtt311"),
    pytest.param("5", id="mqtt5", marks=pytest.mark.mqtt5),
]


def _recorder(
    broker: BrokerEndpoint, prefix: str, protocol: str, **options: object
) -> MqttConnector:
    return MqttConnector(
        broker.host,
        broker.port,
        protocol=protocol,
        topic_prefix=prefix,
        presence=False,
        **options,  # type: ignore[arg-type]
    )


async def _away_then_back(
    broker: BrokerEndpoint, prefix: str, protocol: str, **options: object
) -> list[Message]:
    """Subscribe, leave, have 5 QoS 1 and 5 QoS 0 messages published, come back as a new
    connector with the same options; what reaches the subscription made before connect()."""
    first = _recorder(broker, prefix, protocol, **options)
    await first.subscribe(f"{prefix}/q/#", Inbox())
    await first.subscribe(f"{prefix}/other/#", Inbox())
    await first.connect(require=True)
    await first.disconnect()
    async with _recorder(broker, prefix, protocol) as publisher:
        for n in range(10):
            await publisher.publish(f"{prefix}/q/{n}", {"n": n}, qos=n % 2)
        await publisher.flush(10)
    inbox = Inbox()
    back = _recorder(broker, prefix, protocol, **options)
    await back.subscribe(f"{prefix}/other/#", Inbox())  # the other order: other identifiers
    await back.subscribe(f"{prefix}/q/#", inbox)
    await back.connect(require=True)
    try:
        async with _recorder(broker, prefix, protocol) as publisher:
            await publisher.publish(f"{prefix}/q/end", {"n": "end"}, qos=1)
            await publisher.flush(10)
        await inbox.until(lambda m: m.payload["n"] == "end")  # after all that was queued
    finally:
        await back.disconnect()
    return inbox.all


@pytest.mark.parametrize("protocol", _PROTOCOLS)
async def test_qos1_messages_published_while_away_arrive(
    mqtt_broker: BrokerEndpoint, prefix: str, protocol: str
) -> None:
    """The five QoS 1 messages are kept for it, in order; QoS 0 ones are not, on mosquitto (its
    default; RabbitMQ keeps them too, in a queue that does not keep the order across QoS)."""
    if protocol == "5" and not mqtt_broker.supports_mqtt5:
        pytest.skip(f"the broker does not speak MQTT 5 ({type(mqtt_broker).__name__})")
    got = await _away_then_back(
        mqtt_broker, prefix, protocol, client_id=f"{prefix}-rec", session_expiry=3600
    )
    numbers = [m.payload["n"] for m in got]
    assert [n for n in numbers if n == "end" or n % 2] == [1, 3, 5, 7, 9, "end"]
    if mqtt_broker.is_mosquitto:
        assert numbers == [1, 3, 5, 7, 9, "end"]


@pytest.mark.parametrize("protocol", _PROTOCOLS)
async def test_without_a_session_nothing_is_kept(
    mqtt_broker: BrokerEndpoint, prefix: str, protocol: str
) -> None:
    """The same with a clean session: only what is published once it is back."""
    if protocol == "5" and not mqtt_broker.supports_mqtt5:
        pytest.skip(f"the broker does not speak MQTT 5 ({type(mqtt_broker).__name__})")
    got = await _away_then_back(mqtt_broker, prefix, protocol, client_id=f"{prefix}-rec")
    assert [m.payload["n"] for m in got] == ["end"]
