"""Fixtures of the connector's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascade.connectors.mqtt.testing._fake_client import FakeClient, FakeMqtt


@pytest.fixture
def fake_mqtt() -> Iterator[FakeMqtt]:
    """Fake aiomqtt clients for the connector: ``MqttConnector(..., link=fake_mqtt.link)``."""
    FakeClient.instances = []
    FakeClient.fail_with = []
    FakeClient.refuse = set()
    FakeClient.poison = set()
    FakeClient.retained_to_wildcards = True
    yield FakeMqtt(FakeClient.instances)
    FakeClient.fail_with = []
    FakeClient.refuse = set()
    FakeClient.poison = set()
