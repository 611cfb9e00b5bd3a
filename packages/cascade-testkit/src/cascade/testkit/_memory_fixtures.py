"""pytest fixtures of the command's and the dashboard's unit tests: an in-memory broker, the
`cascade` command on it, a retained publisher, a started dashboard hub, and a default history
of each test's own (the CLI's and the dashboard's suites share them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Connector

if TYPE_CHECKING:
    from typer.testing import Result

    from cascade.dashboard import DashboardHub

__all__ = [
    "Invoke",
    "PublishRetained",
    "broker",
    "hub",
    "invoke",
    "own_default_history",
    "publish_retained",
]

Invoke = Callable[..., "Result"]
"""What :func:`invoke` gives: ``run(*args, connector_factory=...)``, the command's result."""
PublishRetained = Callable[[str, bytes], None]
"""What :func:`publish_retained` gives: ``publish(topic, raw)``."""


@pytest.fixture(autouse=True)
def own_default_history(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default history (`cascade record`'s) is each test's own, empty until one makes it:
    commands and dashboards that look there never read the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.delenv("CASCADE_HISTORY_DB", raising=False)


@pytest.fixture
def broker() -> InMemoryBroker:
    """An in-memory broker of the test's own."""
    return InMemoryBroker()


@pytest.fixture
def invoke(broker: InMemoryBroker) -> Invoke:
    """Invoke `cascade ARGS` with every connector on ``broker``."""
    from typer.testing import CliRunner

    from cascade.cli import app
    from cascade.cli.plumbing import CliContext

    def factory(options: Any) -> Connector:
        return InMemoryConnector(broker, presence=False)

    def run(*args: str, connector_factory: Callable[[Any], Connector] = factory) -> Result:
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
    from cascade.dashboard import DashboardHub

    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0)
    await hub.start()
    yield hub
    await hub.stop()
