"""Cascade's MQTT connector: ``MqttConnector`` over aiomqtt 2.x, and an embedded broker.

``MqttConnector`` implements :class:`cascade.interfaces.Connector`: presence
with a last will, fire-and-forget publishing into a bounded buffer, a
background subscribe loop, and reconnection with backoff. ``EmbeddedBroker``
runs an MQTT 3.1.1 broker in-process (needs the ``embedded`` extra), for
demos and tests without mosquitto. A pretend broker for unit tests,
``FakeBroker``, is in ``cascade.connectors.mqtt.testing``.
"""

from ._connector import MqttConnector
from ._embedded import EmbeddedBroker
from ._link import ConnectRefusedError
from ._stats import MqttConnectorStats

__all__ = ["ConnectRefusedError", "EmbeddedBroker", "MqttConnector", "MqttConnectorStats"]
