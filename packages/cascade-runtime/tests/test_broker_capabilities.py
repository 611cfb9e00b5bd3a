"""What an engine says when its broker lacks a capability Cascade relies on."""

from __future__ import annotations

import logging

import pytest

from cascade.interfaces import BrokerCapabilities
from cascade.interfaces.testing import InMemoryConnector
from cascade.runtime import Engine, task


@task
async def one() -> int:
    return 1


class ExactRetainedOnly(InMemoryConnector):
    """A connector whose broker sends retained messages to exact-topic subscriptions only."""

    @property
    def capabilities(self) -> BrokerCapabilities:
        return BrokerCapabilities(retained_to_wildcards=False)


async def test_a_broker_without_retained_wildcards_is_reported_once_with_the_consequence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One warning per connector, however many runs, naming what will not apply."""
    connector = ExactRetainedOnly(presence=False)
    async with connector:
        engine = Engine(connector, heartbeat_interval=None)
        with caplog.at_level(logging.WARNING, "cascade.runtime"):
            assert await engine.run(one()) == 1
            assert await engine.run(one()) == 1
    warnings = [r.getMessage() for r in caplog.records if "wildcard" in r.getMessage()]
    assert len(warnings) == 1
    assert "constraints set before this engine started will not apply" in warnings[0]


async def test_a_broker_that_has_it_is_not_mentioned(caplog: pytest.LogCaptureFixture) -> None:
    """The in-memory broker sends retained messages to every matching subscription."""
    with caplog.at_level(logging.WARNING, "cascade.runtime"):
        assert await Engine(InMemoryConnector(presence=False), heartbeat_interval=None).run(one())
    assert "wildcard" not in caplog.text
