"""A real broker over TCP for the dashboard's integration tests."""

from __future__ import annotations

import uuid

import pytest

from cascade.testkit import (  # noqa: F401 - fixtures
    family_mosquitto_broker,  # "mosquitto_broker"
    family_mqtt_broker,  # "mqtt_broker", of the family CASCADE_TEST_BROKER names
    family_mqtt_tls_broker,  # "mqtt_tls_broker"
    mosquitto_bridge,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def scope_name() -> str:
    """A task glob of its own per test: the CLI always uses the default topic prefix."""
    return f"it_{uuid.uuid4().hex[:10]}"
