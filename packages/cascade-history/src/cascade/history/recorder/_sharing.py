"""Whether a broker delivers to MQTT shared subscriptions (``$share/GROUP/filter``).

MQTT 5 brokers may say so in their CONNACK, MQTT 3.1.1 ones cannot, and some
take a ``$share/...`` filter as a plain one that matches nothing (amqtt,
RabbitMQ 3.x): only trying tells. :func:`delivers_to_shared` subscribes to a
shared filter of a topic in the connector's own marker space, publishes one
message there at QoS 1, waits for the broker's acknowledgement (it has routed
the message by then) and for one more subscription's round trip (whatever
the broker queued for this client before it has been dispatched): the
message came back through the shared subscription, or it never will.
"""

from __future__ import annotations

import asyncio
import uuid

from cascade.interfaces import Connector, Message, encode_level

__all__ = ["delivers_to_shared", "shared_filter"]


def shared_filter(group: str, topic_filter: str) -> str:
    """``$share/{group}/{topic_filter}``."""
    return f"$share/{group}/{topic_filter}"


async def delivers_to_shared(
    connector: Connector, prefix: str, group: str, timeout: float = 5.0
) -> bool:
    """Whether the broker delivers through shared subscriptions of ``group`` (connected only).

    Raises :class:`~cascade.interfaces.ConnectorError` when the broker does not
    acknowledge the probe within ``timeout`` seconds.
    """
    probe = f"{prefix}/_marker/{encode_level(connector.source_id)}/share-{uuid.uuid4().hex}"
    arrived = asyncio.Event()

    def on_probe(message: Message) -> None:
        arrived.set()

    handle = await connector.subscribe(shared_filter(group, probe), on_probe)
    try:
        await connector.publish(probe, {"probe": 1}, qos=1)
        await connector.flush(timeout)
        barrier = await connector.subscribe(f"{probe}/barrier", on_probe)
        await barrier.unsubscribe()
    finally:
        await handle.unsubscribe()
    return arrived.is_set()
