"""Fixtures of the connector's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_mock import MockerFixture

from cascade.connectors.mqtt.testing._fake_client import FakeClient, FakeMqtt


@pytest.fixture
def fake_mqtt(mocker: MockerFixture) -> Iterator[FakeMqtt]:
    """Replace ``aiomqtt.Client`` in the connector with :class:`FakeClient`."""
    FakeClient.instances = []
    FakeClient.fail_with = []
    FakeClient.refuse = set()
    mocker.patch("cascade.connectors.mqtt._connector.aiomqtt.Client", FakeClient)
    yield FakeMqtt(FakeClient.instances)
    FakeClient.fail_with = []
    FakeClient.refuse = set()
