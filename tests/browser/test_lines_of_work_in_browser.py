"""Lines of work live in a real headless Chromium: a run and its rerun, heard through the broker
as they happen, are one row of the Runs list (the rerun's), with their line under its status."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from cascade.connector_kit.testing import telemetry
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import LifecycleEvent, TaskStateEvent
from cascade.interfaces.serving import RunOrigin
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard
from .test_dashboard_in_browser import go_to, open_page, texts, wait

pytestmark = pytest.mark.integration


def _publish(broker: BrokerEndpoint, *bodies: tuple[str, Any]) -> None:
    """Each ``(run_id, body)`` as an engine sends it, in order."""

    async def publish() -> None:
        async with MqttConnector(broker.host, broker.port, presence=False) as connector:
            for run_id, body in bodies:
                message = telemetry(body, run_id=run_id, project_id="lines")
                await connector.publish(message.topic, message.payload, qos=1)
            await connector.flush(5)

    asyncio.run(publish())


def test_a_run_and_its_rerun_are_one_row_live(
    dashboard: Dashboard, browser: Any, mqtt_broker: BrokerEndpoint
) -> None:
    first, again = uuid.uuid4().hex, uuid.uuid4().hex
    open_page(browser, dashboard, token=None)
    go_to(browser, "runs")
    _publish(
        mqtt_broker,
        (first, LifecycleEvent(event="ENGINE_STARTED", tasks=1, name="etl")),
        (first, LifecycleEvent(event="ENGINE_STOPPED", status="Failed")),
    )

    def rows() -> list[str]:
        ours = (first, again)
        found: list[str] = browser.execute_script(
            "return [...document.querySelectorAll('#r-live tr[data-run-id]')]"
            ".map(r => r.getAttribute('data-run-id'));"
        )
        return [run_id for run_id in found if run_id in ours]

    wait(browser, lambda d: rows() == [first])
    origin = RunOrigin(workflow="etl", rerun_of=first, root_run=first)
    _publish(
        mqtt_broker,
        (again, LifecycleEvent(event="ENGINE_STARTED", tasks=1, name="etl", origin=origin)),
        (
            again,
            TaskStateEvent(task_id="load", task_name="load", state="COMPLETED", reused_from=first),
        ),
    )
    wait(browser, lambda d: rows() == [again])  # one row: the line's latest run
    row = f'#r-live tr[data-run-id="{again}"]'
    linked = (
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => e.getAttribute('data-line-run'));"
    )
    wait(browser, lambda d: d.execute_script(linked, row + " [data-line-run]") == [first, again])
    said = texts(browser, row + " .line-of-work")[0]
    assert said.startswith("line of work: latest Running · first ")
    assert f"{first[:12]} Failed → rerun " in said
    assert said.endswith("Running, 1 reused")
    _publish(mqtt_broker, (again, LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")))
    wait(browser, lambda d: "latest Succeeded" in texts(d, row + " .line-of-work")[0])
    assert rows() == [again]
