"""A real broker over TCP for the CLI's integration tests."""

from __future__ import annotations

import uuid

import pytest

from cascade.connectors.mqtt.testing import mqtt_broker  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def scope_name() -> str:
    """A task glob of its own per test: the CLI always uses the default topic prefix."""
    return f"it_{uuid.uuid4().hex[:10]}"
