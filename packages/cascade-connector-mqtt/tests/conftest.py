"""Fixtures of the connector's unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cascade.connectors.mqtt.testing import FakeBroker

ConnectorTasks = Callable[[], set[asyncio.Task[Any]]]

_CONNECTOR_TASKS = frozenset({"cascade-mqtt", "cascade-mqtt-reader", "cascade-mqtt-sender"})


@pytest.fixture
def broker() -> FakeBroker:
    """A pretend broker: ``MqttConnector("broker", link=broker)`` connects through fake links."""
    return FakeBroker()


@pytest.fixture
def connector_tasks() -> ConnectorTasks:
    """The connector's tasks still running in this event loop (none once it is disconnected)."""

    def running() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks() if t.get_name() in _CONNECTOR_TASKS and not t.done()}

    return running


Until = Callable[[Callable[[], object], str], Awaitable[None]]


@pytest.fixture
def until() -> Until:
    """``await until(condition, what)``: yield loop turns until ``condition()`` holds.

    For what the fake link makes happen without a timer (it answers on the
    next loop turn); fails after 1,000 turns, naming ``what``.
    """

    async def wait(condition: Callable[[], object], what: str) -> None:
        for _ in range(1000):
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"never happened: {what}")

    return wait
