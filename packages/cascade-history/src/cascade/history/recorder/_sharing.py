"""A shared recorder's MQTT shared subscriptions (``$share/GROUP/filter``), made before it
connects, and where it tries whether the broker delivers through them.

MQTT 5 brokers may say so in their CONNACK, MQTT 3.1.1 ones cannot, and some
take a ``$share/...`` filter as a plain one that matches nothing (amqtt,
RabbitMQ 3.x): only trying tells, which the connector does, and falls back where it does not
(``Connector.subscribe_shared``), on a topic of the recorder's own marker space.
"""

from __future__ import annotations

import uuid

from cascade.interfaces import encode_level

__all__ = ["share_probe_topic", "shared_filter"]


def shared_filter(group: str, topic_filter: str) -> str:
    """``$share/{group}/{topic_filter}``."""
    return f"$share/{group}/{topic_filter}"


def share_probe_topic(prefix: str, source_id: str) -> str:
    """A topic of the recorder's own marker space (``{prefix}/_marker/{source}/share-{uuid}``),
    new each time, where it tries a shared subscription
    (:meth:`~cascade.interfaces.Connector.subscribe_shared`)."""
    return f"{prefix}/_marker/{encode_level(source_id)}/share-{uuid.uuid4().hex}"
