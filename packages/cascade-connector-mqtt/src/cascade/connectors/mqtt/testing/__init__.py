"""Test support for code that talks MQTT: private brokers and pytest fixtures.

In another package's ``tests/integration/conftest.py``::

    from cascade.connectors.mqtt.testing import mqtt_broker  # noqa: F401

then take ``mqtt_broker`` (session-wide: a private mosquitto on a free
loopback port, or the embedded amqtt broker where mosquitto is not
installed; see ``.is_mosquitto`` and ``.supports_mqtt5``),
``mosquitto_broker`` (one per test, can ``stop``/``pause``/``resume``/
``restart``) or ``mqtt_tls_broker`` (TLS and a password file) as arguments.
This module imports pytest; it is for tests and benchmarks only.
"""

from ._certs import TestCertificates, make_test_certificates
from ._fixtures import NO_MOSQUITTO, BrokerEndpoint, mosquitto_broker, mqtt_broker, mqtt_tls_broker
from ._inbox import Inbox
from ._mosquitto import MosquittoBroker, free_port, mosquitto_path
from ._threaded import ThreadedEmbeddedBroker

__all__ = [
    "NO_MOSQUITTO",
    "BrokerEndpoint",
    "Inbox",
    "MosquittoBroker",
    "TestCertificates",
    "ThreadedEmbeddedBroker",
    "free_port",
    "make_test_certificates",
    "mosquitto_broker",
    "mosquitto_path",
    "mqtt_broker",
    "mqtt_tls_broker",
]
