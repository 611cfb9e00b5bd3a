"""Schedules on the dashboard in a real headless Chromium: a process serves a schedule every
second; the Schedules panel lists it live from its announcements (its workflow, when it fires,
its next slot, its last slot and that slot's run), an operator (the dashboard's token) pauses it
with a reason from the page (its slots skipped meanwhile, the panel saying by whom and why) and
resumes it (its slots fire again), and the run a slot started says its schedule and slot in the
run view."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, Event, RunStarted, Schedule, task
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
def load() -> int:
    return 1


def nightly():  # type: ignore[no-untyped-def]
    """The nightly load."""
    return load()


def status(driver: Any) -> str:
    text: str = driver.execute_script("return document.getElementById('s-status').textContent")
    return text


def test_an_operator_sees_a_schedule_pauses_and_resumes_it_and_opens_a_slots_run(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    name = f"tick_{uuid.uuid4().hex[:6]}"
    source = f"serve-{uuid.uuid4().hex[:6]}"
    events: list[Event] = []
    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
                    heartbeat_interval=0.5)  # fmt: skip
    engine.events.subscribe(events.append)
    tick = Schedule(every=timedelta(seconds=1), workflow="nightly", catchup="none")

    def slots() -> list[RunStarted]:
        return [e for e in events if isinstance(e, RunStarted) and e.origin
                and e.origin.schedule == name]  # fmt: skip

    async def serve() -> asyncio.Task[None]:
        return asyncio.create_task(engine.serve({"nightly": nightly}, schedules={name: tick}))

    async def stop(serving: asyncio.Task[None]) -> None:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    serving = engine_thread.submit(serve()).result(20)
    try:
        open_page(browser, dashboard)
        go_to(browser, "workflows")
        row = f'#s-table tr[data-schedule="{name}"]'
        wait(browser, lambda d: css(d, f"{row} button[data-run-id]"))  # a slot fired
        assert not browser.find_element(By.ID, "schedules").get_attribute("hidden")
        [shown] = texts(browser, row)
        assert "nightly" in shown
        assert "every 1.0s" in shown
        assert source in shown
        assert " UTC" in shown  # its next slot
        browser.find_element(By.CSS_SELECTOR, f"{row} input[data-reason]").send_keys(XSS)
        click(browser, f'{row} button[type="submit"]')
        wait(browser, lambda d: status(d) == f"paused {name}")
        paused_cell = f"{row} td:nth-child(6)"
        wait(browser, lambda d: texts(d, paused_cell)[0].startswith("paused by "))
        assert texts(browser, paused_cell)[0].endswith(f"\u201c{XSS}\u201d")  # shown as text
        paused = engine_thread.call(lambda: engine.stats.slots_paused)
        wait(browser, lambda d: engine_thread.call(lambda: engine.stats.slots_paused) > paused)
        fired = engine_thread.call(lambda: len(slots()))
        click(browser, f'{row} button[type="submit"]')  # Resume
        wait(browser, lambda d: status(d) == f"resumed {name}")
        wait(browser, lambda d: engine_thread.call(lambda: len(slots())) > fired)
        wait(browser, lambda d: texts(d, paused_cell)[0] == "no")
        run_id = browser.execute_script(
            "return document.querySelector(arguments[0]).getAttribute('data-run-id')",
            f"{row} button[data-run-id]",
        )
        [started] = [e for e in engine_thread.call(slots) if e.run_id == run_id]
        assert started.origin is not None
        assert started.origin.scheduled_for is not None
        click(browser, f'{row} button[data-run-id="{run_id}"]')
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == run_id)
        stamp = started.origin.scheduled_for[:19].replace("T", " ")
        wait(browser, lambda d: f"scheduled: {name}, slot {stamp} UTC"
             in d.find_element(By.ID, "rp-facts").text)  # fmt: skip
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert no_script_errors(browser) == []
    finally:
        engine_thread.submit(stop(serving)).result(20)
