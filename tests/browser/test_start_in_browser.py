"""Served workflows and run lineage on the dashboard in a real headless Chromium: an operator
(the dashboard's token) starts a served workflow from the page with a param and a reason, and
opens the run it started (its name and who started it shown); and the History section links
a failed run and its rerun both ways, with the task the rerun reused and where from."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Received
from cascade.interfaces import decode_envelope
from cascade.interfaces.serving import ServedWorkflow, WorkflowParam
from cascade.testkit import BrokerEndpoint, ServingEngine

from .conftest import TOKEN, Dashboard, EngineThread
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


def status(driver: Any) -> str:
    text: str = driver.execute_script("return document.getElementById('w-status').textContent")
    return text


def test_an_operator_starts_a_served_workflow_and_opens_its_run(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    name = f"nightly_{uuid.uuid4().hex[:8]}"
    served = ServedWorkflow(
        name=name,
        params=[
            WorkflowParam(name="day", annotation="str"),
            WorkflowParam(name="n", required=False, default=5, annotation="int"),
        ],
        doc=XSS,
    )
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port,
                              source_id=f"serve-{uuid.uuid4().hex[:6]}")  # fmt: skip
    trigger = {"name": "after_etl", "workflow": name, "kind": "after", "on": "etl Succeeded",
               "events": 3, "started": 2, "last_event": XSS}  # fmt: skip
    server = ServingEngine(connector, [served], triggers=[trigger])

    async def serve() -> None:
        await connector.connect()
        await server.start()

    async def stop() -> None:
        await server.stop()
        await connector.disconnect()

    engine_thread.submit(serve()).result(20)
    try:
        open_page(browser, dashboard)
        go_to(browser, "workflows")
        row = f'#w-table tr[data-workflow="{name}"]'
        wait(browser, lambda d: css(d, f"{row} form"))
        assert not browser.find_element(By.ID, "workflows").get_attribute("hidden")
        assert XSS in texts(browser, row)[0]  # the doc, shown as text
        # the trigger that starts it, and its last event shown as text (docs/triggers.md)
        assert "after_etl (after: etl Succeeded)" in texts(browser, row)[0]
        assert "2 of 3 events; last: " + XSS in texts(browser, row)[0]
        form = f'{row} form[data-workflow="{name}"]'
        browser.find_element(By.CSS_SELECTOR, f'{form} input[data-param="day"]').send_keys(
            '"2026-11-25"'
        )
        browser.find_element(By.CSS_SELECTOR, f"{form} input[data-reason]").send_keys("backfill")
        click(browser, f'{form} button[type="submit"]')
        try:
            wait(browser, lambda d: status(d).startswith(f"started {name} on {server.source}"))
        except Exception:
            raise AssertionError(f"the page says {status(browser)!r}") from None
        [(run_id, request)] = engine_thread.call(lambda: list(server.started))
        assert request.params == {"day": "2026-11-25"}
        assert request.reason == "backfill"
        assert request.issued_by  # the token's name
        click(browser, f'#w-status button[data-run-id="{run_id}"]')
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == run_id)
        wait(browser, lambda d: d.find_element(By.ID, "rp-name").text == name)
        facts = "return document.getElementById('rp-facts').textContent"
        wait(browser, lambda d: f"workflow{name}" in d.execute_script(facts))
        assert "started by" in browser.execute_script(facts)
        go_to(browser, "runs")
        listing = f'#runs tr[data-run-id="{run_id}"]'
        wait(browser, lambda d: css(d, listing))  # the runs table redraws on the page's clock
        [listed] = texts(browser, listing)
        assert name in listed
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert no_script_errors(browser) == []
    finally:
        engine_thread.submit(stop()).result(20)


FIRST, SECOND = "a1" * 16, "b2" * 16


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": run_id,
           "org_id": "local", "project_id": "default", "source": "h1", "body": body}  # fmt: skip
    return Received(f"cascade/telemetry/local/default/{run_id}/events", decode_envelope(raw), ts)


def _recorded(path: str) -> None:
    """A served run that failed at transform an hour ago, and its rerun that reused extract."""
    at = time.time() - 3600
    origin = {"workflow": "nightly", "params": {"n": 5}, "request_id": "req-1",
              "issued_by": "alice", "reason": XSS}  # fmt: skip
    again = {**origin, "request_id": "req-2", "rerun_of": FIRST, "root_run": FIRST}
    with History(path, mode="write") as history:
        for run_id, when, said, end in ((FIRST, at, origin, "Failed"),
                                        (SECOND, at + 60, again, "Succeeded")):  # fmt: skip
            extract = {"type": "TaskStateEvent", "task_id": "extract-1", "task_name": "extract",
                       "state": "COMPLETED"}  # fmt: skip
            if "rerun_of" in said:
                extract["reused_from"] = FIRST
            start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "name": "nightly",
                     "origin": said}  # fmt: skip
            stop = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": end}
            history.store([_event(run_id, when, start), _event(run_id, when + 1, extract),
                           _event(run_id, when + 2, stop)])  # fmt: skip


def test_the_history_links_a_rerun_both_ways(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    path = str(tmp_path / "history.sqlite3")
    _recorded(path)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", path)  # fmt: skip
    try:
        browser.get(board.url)
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{SECOND}"]'))
        assert "nightly" in texts(browser, f'#h-runs tr[data-run-id="{SECOND}"]')[0]
        click(browser, f'#h-runs tr[data-run-id="{SECOND}"] button')  # the run's own page
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == SECOND)
        wait(browser, lambda d: "rerun of" in d.find_element(By.ID, "rp-lineage").text)
        lineage = browser.find_element(By.ID, "rp-lineage").text
        assert f"rerun of {FIRST[:12]} (Failed)" in lineage
        [reused] = texts(browser, '#rp-tasks tr[data-task-id="extract-1"] td:nth-child(6)')
        assert reused == f"reused from {FIRST[:12]}"
        assert XSS in browser.find_element(By.ID, "rp-facts").text  # the reason, as text
        click(browser, f'#rp-lineage a[data-run-id="{FIRST}"]')
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == FIRST)
        wait(browser, lambda d: "reruns of it" in d.find_element(By.ID, "rp-lineage").text)
        assert (
            f"reruns of it: {SECOND[:12]} (Succeeded)"
            in browser.find_element(By.ID, "rp-lineage").text
        )
        assert texts(browser, '#rp-tasks tr[data-task-id="extract-1"] td:nth-child(6)') == ["-"]
        go_to(browser, "audit")
        wait(browser, lambda d: len(css(d, "#h-audit tbody tr")) == 2)
        starts = texts(browser, "#h-audit tbody tr")
        assert all("start" in row and "nightly" in row for row in starts)
        assert f"rerun of {FIRST[:12]}" in starts[0]
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
