"""Triggers on the dashboard in a real headless Chromium: a process serves a workflow with a
signal trigger; the Workflows place lists the trigger beside its workflow, an operator (the
dashboard's token) pauses it with a reason from the page (a signal then starts nothing, the
page saying by whom and why, as its server announces it) and resumes it (a signal starts its
run again); the Runs list filtered by the trigger lists that run, by another none."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, Event, RunStarted, Trigger, task
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard, EngineThread
from .test_dashboard_in_browser import (
    click,
    css,
    go_to,
    no_script_errors,
    open_page,
    texts,
    wait,
)

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"


@task
def summarise() -> int:
    return 1


def report():  # type: ignore[no-untyped-def]
    """The report of a deploy."""
    return summarise()


def listed(driver: Any) -> list[str]:
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#runs tbody tr[data-run-id]')]"
        ".map((e) => e.getAttribute('data-run-id'));"
    )
    return ids


def status(driver: Any) -> str:
    text: str = driver.execute_script("return document.getElementById('w-status').textContent")
    return text


def test_an_operator_pauses_a_trigger_from_the_page_and_resumes_it(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    tag = uuid.uuid4().hex[:6]
    name, workflow, topic = f"on_deploy_{tag}", f"report_{tag}", f"deploys/{tag}"
    source = f"serve-{tag}"
    events: list[Event] = []
    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
                    heartbeat_interval=0.5)  # fmt: skip
    engine.events.subscribe(events.append)
    on_deploy = Trigger(signal=topic, workflow=workflow)

    def triggered() -> list[RunStarted]:
        return [e for e in events if isinstance(e, RunStarted) and e.origin
                and e.origin.trigger == name]  # fmt: skip

    async def serve() -> asyncio.Task[None]:
        return asyncio.create_task(engine.serve({workflow: report}, triggers={name: on_deploy}))

    async def signal(event_id: str) -> None:
        ops = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=f"ops-{tag}")
        async with ops:
            await ops.publish(f"cascade/signal/local/default/{topic}", {"id": event_id}, qos=1)

    async def stop(serving: asyncio.Task[None]) -> None:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    serving = engine_thread.submit(serve()).result(20)
    try:
        open_page(browser, dashboard)
        go_to(browser, "workflows")
        line = f'#w-table tr[data-workflow="{workflow}"] div.trigger[data-trigger="{name}"]'
        wait(browser, lambda d: css(d, f"{line} form input[data-reason]"))
        assert f"{name} (signal: {topic}) on {source}" in texts(browser, line)[0]
        browser.find_element(By.CSS_SELECTOR, f"{line} input[data-reason]").send_keys(XSS)
        click(browser, f'{line} button[type="submit"]')
        wait(browser, lambda d: status(d) == f"paused {name}")
        said = f"{line} span.paused"
        wait(browser, lambda d: css(d, said))  # as its server announces the pause
        assert ", paused by " in texts(browser, said)[0]
        assert texts(browser, said)[0].endswith(f"\u201c{XSS}\u201d")  # shown as text
        engine_thread.submit(signal("while-paused")).result(20)
        wait(browser, lambda d: engine_thread.call(lambda: engine.stats.trigger_events_paused) == 1)
        assert engine_thread.call(triggered) == []
        click(browser, f'{line} button[type="submit"]')  # Resume
        wait(browser, lambda d: status(d) == f"resumed {name}")
        wait(browser, lambda d: css(d, f"{line} form input[data-reason]") and not css(d, said))
        engine_thread.submit(signal("resumed")).result(20)
        wait(browser, lambda d: len(engine_thread.call(triggered)) == 1)
        [run] = engine_thread.call(triggered)
        # the Runs list filtered by the trigger: its run only, and the address says so
        go_to(browser, "runs")
        wait(browser, lambda d: listed(d) == [run.run_id])
        browser.find_element(By.ID, "r-trigger").send_keys("another\n")
        wait(browser, lambda d: listed(d) == [])
        browser.find_element(By.ID, "r-trigger").clear()
        browser.find_element(By.ID, "r-trigger").send_keys(name + "\n")
        wait(browser, lambda d: listed(d) == [run.run_id])
        assert browser.current_url.endswith(f"/runs?trigger={name}")
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert no_script_errors(browser) == []
    finally:
        engine_thread.submit(stop(serving)).result(20)
