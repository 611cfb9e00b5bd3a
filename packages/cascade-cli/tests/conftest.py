"""Runs CLI commands against an in-memory broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.dashboard import DashboardHub
from cascade.interfaces import Connector
from cascade.interfaces.testing import InMemoryBroker, InMemoryConnector

Invoke = Callable[..., Result]
PublishRetained = Callable[[str, bytes], None]


@pytest.fixture(autouse=True)
def _own_default_history(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default history (`cascade record`'s) is each test's own, empty until one makes it:
    commands that look a run id up there never read the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.delenv("CASCADE_HISTORY_DB", raising=False)


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
def invoke(broker: InMemoryBroker) -> Invoke:
    """Invoke `cascade ARGS` with every connector on ``broker``."""

    def factory(options: BrokerOptions) -> Connector:
        return InMemoryConnector(broker, presence=False)

    def run(
        *args: str, connector_factory: Callable[[BrokerOptions], Connector] = factory
    ) -> Result:
        return CliRunner().invoke(
            app, list(args), obj=CliContext(connector_factory=connector_factory)
        )

    return run


@pytest.fixture
def publish_retained(broker: InMemoryBroker) -> PublishRetained:
    """Publish a retained message as another tool would (QoS 1)."""

    def publish(topic: str, raw: bytes) -> None:
        async def send() -> None:
            async with InMemoryConnector(broker, presence=False) as other:
                await other.publish(topic, raw, qos=1, retain=True)

        asyncio.run(send())

    return publish


@pytest.fixture
async def hub(broker: InMemoryBroker) -> AsyncIterator[DashboardHub]:
    """A started dashboard hub on ``broker`` (stopped after the test)."""
    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0)
    await hub.start()
    yield hub
    await hub.stop()
