"""A real broker over TCP for the engine's integration tests, and a plain MQTT client beside it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from cascade.testkit import (  # noqa: F401 - fixtures
    BrokerEndpoint,
    family_mosquitto_broker,  # "mosquitto_broker"
    family_mqtt_broker,  # "mqtt_broker", of the family CASCADE_TEST_BROKER names
    family_own_broker,  # "own_broker": a broker of the family for one test, free to restart
    s3_server,  # moto's S3 server on loopback, a bucket per test (shared_store's S3)
    shared_store,  # a test run with its servers' results store in a directory, then on S3
)

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    """A topic prefix per test, so tests on the shared broker never see each other."""
    return f"rt-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def plain_client(
    mqtt_broker: BrokerEndpoint,
) -> AsyncIterator[aiomqtt.Client]:
    """A bare aiomqtt client: an observer or controller that knows nothing of Cascade."""
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        yield client
