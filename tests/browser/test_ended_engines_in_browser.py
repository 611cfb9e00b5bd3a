"""The dashboard's engines in a real headless Chromium: those that ended cleanly a while ago
are a count with a button that lists them; a lost engine stays in the list."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import StatusMessage, status_topic
from cascade.interfaces.summaries import EngineSummary, RunTally, TaskTally, summary_topic
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard
from .test_dashboard_in_browser import click, open_page, texts, wait

pytestmark = pytest.mark.integration


def _publish(broker: BrokerEndpoint, tag: str) -> None:
    async def publish() -> None:
        old = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
        async with MqttConnector(broker.host, broker.port, presence=False) as connector:
            for source, reason in [*((f"ended-{tag}-{n}", "shutdown") for n in range(3)),
                                   (f"lost-{tag}", None)]:  # fmt: skip
                said = StatusMessage(status="offline", source=source, session=1, ts=old,
                                     reason=reason)  # fmt: skip
                await connector.publish(status_topic(source), said, qos=1, retain=True)
            await connector.flush(5)

    asyncio.run(publish())


def test_clean_ends_are_a_count_the_button_lists(
    dashboard: Dashboard, browser: Any, mqtt_broker: BrokerEndpoint
) -> None:
    tag = uuid.uuid4().hex[:8]
    _publish(mqtt_broker, tag)
    open_page(browser, dashboard, token=None)

    def sources() -> list[str]:
        return [s for s in texts(browser, "#engines tr td:first-child") if tag in s]

    wait(browser, lambda d: sources() == [f"lost-{tag}"])
    wait(browser, lambda d: "engines ended cleanly" in texts(d, "#ended-count")[0])
    click(browser, "#ended-list")
    wait(browser, lambda d: sources() == [f"ended-{tag}-{n}" for n in range(3)])


def test_an_engine_row_counts_a_held_task_once(
    dashboard: Dashboard, browser: Any, mqtt_broker: BrokerEndpoint
) -> None:
    """The held are among the blocked on the wire: the row says them as a part of them."""
    source = f"holding-{uuid.uuid4().hex[:8]}"

    async def publish() -> None:
        said = EngineSummary(
            source=source,
            session=1,
            runs=RunTally(running=1, failed=2, cancelled=1),
            tasks=TaskTally(blocked=1, held=1, pending=12, failed=2, cancelled=1),
            more_live=1,
        )
        async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as connector:
            online = StatusMessage(status="online", source=source, session=1)
            await connector.publish(status_topic(source), online, qos=1, retain=True)
            await connector.publish(summary_topic(source), said, qos=1, retain=True)
            await connector.flush(5)

    asyncio.run(publish())
    open_page(browser, dashboard, token=None)
    cell = f'#engines tr[data-source="{source}"] td:nth-child(6)'
    said = "blocked 1 (1 held) · pending 12 · failed 2 (1 cancelled)"
    wait(browser, lambda d: texts(d, cell) == [said])
