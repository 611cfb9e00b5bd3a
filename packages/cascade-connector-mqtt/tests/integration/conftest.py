"""Integration fixtures: private brokers from cascade.testkit, and an observer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import (  # noqa: F401 - fixtures
    BrokerEndpoint,
    family_mosquitto_broker,  # "mosquitto_broker"
    family_mqtt_broker,  # "mqtt_broker", of the family CASCADE_TEST_BROKER names
    family_mqtt_tls_broker,  # "mqtt_tls_broker"
)

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    """A topic prefix of its own for each test, so tests never see each other's messages."""
    return f"it-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def observer(
    mqtt_broker: BrokerEndpoint,
    prefix: str,
) -> AsyncIterator[MqttConnector]:
    """Another client on the shared broker, to see what a connector under test sends."""
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="observer"
    )
    await connector.connect(require=True)
    yield connector
    await connector.disconnect()


@pytest.fixture
def client_id_twins(
    mosquitto_broker: BrokerEndpoint,
    prefix: str,
) -> tuple[MqttConnector, MqttConnector]:
    """Two connectors (sources "a" and "b") sharing one client id: each takes the other over."""

    def connector(source_id: str) -> MqttConnector:
        return MqttConnector(
            mosquitto_broker.host,
            mosquitto_broker.port,
            client_id=f"{prefix}-same",
            source_id=source_id,
            topic_prefix=prefix,
            backoff_initial=0.05,
            backoff_max=0.4,
        )

    return connector("a"), connector("b")
