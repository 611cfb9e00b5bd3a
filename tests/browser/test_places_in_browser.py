"""The page's addresses in a real headless Chromium: a run's page, its task, a recorded run have
addresses that a reload and back and forward restore; an address of a run not heard of yet
shows it once it is (or where the history has it); the page's first paint has the state; the
History's downloads save a file."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from cascade.connector_kit.testing import telemetry
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import TaskStateEvent
from cascade.runtime import Event, task
from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard, EngineThread
from .test_dashboard_in_browser import (
    WAIT,
    click,
    engine_on,
    no_script_errors,
    open_page,
    open_run,
    started,
    wait,
)
from .test_history_in_browser import RUN_ID, _record_failed_run

pytestmark = pytest.mark.integration


def path(driver: Any) -> str:
    """The page's address: its path and query."""
    url = urlsplit(str(driver.current_url))
    return url.path + ("?" + url.query if url.query else "")


def text(driver: Any, element_id: str) -> str:
    found: str = driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        element_id,
    )
    return found


def shown(driver: Any, element_id: str) -> bool:
    hidden: bool = driver.execute_script(
        "const e = document.getElementById(arguments[0]);"
        "return !e || e.closest('[hidden]') !== null;",
        element_id,
    )
    return not hidden


def test_a_run_and_its_task_have_addresses_that_reload_back_and_forward_restore(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    release = threading.Event()
    name = f"slow_{uuid.uuid4().hex[:6]}"

    @task(name=name)
    def slow() -> str:
        release.wait(WAIT)
        return "done"

    recorded: list[Event] = []
    run = engine_thread.submit(engine_on(mqtt_broker, recorded).run(slow()))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        open_page(browser, dashboard, token=None)
        assert path(browser) == "/"
        open_run(browser, run_id)
        assert path(browser) == f"/runs/{run_id}"
        assert browser.title == f"run {run_id[:12]} · Cascade dashboard"
        task_id = wait(browser, lambda d: d.execute_script(
            "const e = document.querySelector('#rp-timeline [data-task-id]');"
            "return e && e.getAttribute('data-task-id');"))  # fmt: skip
        # the task's name is a button, reached and pressed by the keyboard, its focus drawn
        name = f'#rp-timeline [data-task-id="{task_id}"] button'
        browser.execute_script("document.querySelector(arguments[0]).focus()", name)
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        wait(browser, lambda d: path(d) == f"/runs/{run_id}/tasks/{task_id}")
        wait(browser, lambda d: text(d, "rp-logs-of") == f"of {task_id}")
        redrawn = browser.execute_script("return window.cascadeRepaints")
        wait(browser, lambda d: d.execute_script("return window.cascadeRepaints") > redrawn + 2)
        # the live timeline drawn anew meanwhile: the focus stays on the name, and shows
        assert browser.execute_script(
            "const e = document.activeElement; return e.matches(arguments[0]) &&"
            " e.matches(':focus-visible') && getComputedStyle(e).outlineStyle !== 'none'",
            name,
        )
        browser.back()
        wait(browser, lambda d: text(d, "rp-logs-of") == "of every task")
        assert path(browser) == f"/runs/{run_id}"
        browser.back()
        wait(browser, lambda d: not shown(d, "run-page") and shown(d, "runs"))
        assert path(browser) == "/runs"  # where open_run went by the nav's link
        browser.forward()
        wait(browser, lambda d: shown(d, "run-page") and text(d, "rp-id") == run_id)
        browser.forward()
        wait(browser, lambda d: text(d, "rp-logs-of") == f"of {task_id}")
        # a reload (or the address pasted in another tab): the run and its task, drawn from
        # the state the page came with, before its stream said anything
        browser.refresh()
        assert browser.execute_script("return window.cascadeFirstState") is True
        assert text(browser, "rp-id") == run_id
        assert text(browser, "rp-status") == "Running"
        assert text(browser, "rp-logs-of") == f"of {task_id}"
        assert "connected" in text(browser, "connection")
        # the nav's Runs: the list, the run's page left (its link marked as the place shown)
        assert (
            browser.execute_script(
                "return document.querySelector('#places a[aria-current]').getAttribute('data-nav')"
            )
            == "runs"
        )
        click(browser, '#places a[data-nav="runs"]')
        wait(
            browser, lambda d: path(d) == "/runs" and not shown(d, "run-page") and shown(d, "runs")
        )
        release.set()
        assert run.result(WAIT) == "done"
        assert no_script_errors(browser) == []
    finally:
        release.set()


def test_the_short_id_a_table_prints_opens_the_live_run(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """/runs/ + the 12 digits `cascade runs` prints, pasted: the live run, under its whole id."""
    release = threading.Event()

    @task(name=f"slow_{uuid.uuid4().hex[:6]}")
    def slow() -> str:
        release.wait(WAIT)
        return "done"

    recorded: list[Event] = []
    run = engine_thread.submit(engine_on(mqtt_broker, recorded).run(slow()))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        open_page(browser, dashboard, token=None)
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-run-id="{run_id}"]'))
        browser.get(dashboard.url + f"runs/{run_id[:12]}")
        wait(browser, lambda d: text(d, "rp-status") == "Running")
        assert path(browser) == f"/runs/{run_id}"
        assert text(browser, "rp-id") == run_id
        release.set()
        assert run.result(WAIT) == "done"
        assert no_script_errors(browser) == []
    finally:
        release.set()


def test_the_address_of_a_run_not_heard_of_yet_shows_it_once_it_is(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """Shared before its engine said anything: the page says it holds no such run, then shows
    it as its telemetry arrives, without a reload."""
    run_id = uuid.uuid4().hex
    browser.get(dashboard.url + f"runs/{run_id}")
    wait(browser, lambda d: text(d, "rp-status") == "not heard of")
    assert text(browser, "rp-id") == run_id
    assert f"This dashboard holds no run {run_id} now" in text(browser, "rp-note")
    assert not shown(browser, "rp-body")
    # no presence: an engine that said it went offline after would have lost the run
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, source_id="late-engine", presence=False
    )
    body = TaskStateEvent(task_id="late-1", task_name="late", state="RUNNING")
    heard = telemetry(body, run_id=run_id, source="late-engine")

    async def publish() -> None:
        async with connector:
            await connector.publish(heard.topic, heard.raw, qos=1)

    engine_thread.submit(publish()).result(WAIT)
    wait(browser, lambda d: text(d, "rp-status") == "Running")
    assert not shown(browser, "rp-note")
    wait(browser, lambda d: d.execute_script(
        "return !!document.querySelector('#rp-timeline [data-task-id=\"late-1\"]')"))  # fmt: skip
    assert path(browser) == f"/runs/{run_id}"
    assert no_script_errors(browser) == []


@pytest.fixture
def recorded_board(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> Any:
    """A dashboard whose history (--db) recorded a failed run this dashboard never heard."""
    db = tmp_path / "history.sqlite3"
    _record_failed_run(db)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    yield board
    assert board.stop() == 0, "".join(board.output)


def test_a_run_only_the_history_has_links_its_recorded_page(
    browser: Any, recorded_board: Dashboard
) -> None:
    """The address of a run that ended before the dashboard started: the run's page shows what
    the history recorded of it; its old address (/history/runs/ID) is the same page; a task's
    durations have an address of their own, which back and forward leave and restore."""
    browser.get(recorded_board.url + f"runs/{RUN_ID}")
    wait(browser, lambda d: text(d, "rp-status") == "Failed" and shown(d, "run-page"))
    assert text(browser, "rp-where") == "recorded"
    browser.get(recorded_board.url + f"history/runs/{RUN_ID}")
    wait(browser, lambda d: text(d, "rp-status") == "Failed" and shown(d, "run-page"))
    assert path(browser) == f"/runs/{RUN_ID}"
    click(browser, '#places a[data-nav="runs"]')
    click(browser, 'a[href="/tasks"]')
    click(browser, '#h-tasks tr[data-task-name="fetch"] button')
    wait(browser, lambda d: path(d) == "/history/tasks/fetch" and shown(d, "h-task"))
    assert not shown(browser, "run-page")
    browser.back()
    wait(browser, lambda d: path(d) == "/tasks" and not shown(d, "h-task"))
    browser.back()
    browser.back()
    wait(browser, lambda d: path(d) == f"/runs/{RUN_ID}" and shown(d, "run-page"))
    assert no_script_errors(browser) == []


def test_the_history_downloads_its_runs_as_csv_and_json_lines(
    browser: Any, recorded_board: Dashboard, tmp_path: Path
) -> None:
    saved = tmp_path / "downloads"
    saved.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(saved)}
    )
    browser.get(recorded_board.url)
    wait(browser, lambda d: d.find_element(By.ID, "h-runs-csv").is_displayed())
    wait(browser, lambda d: d.execute_script(
        "return document.querySelector('#h-runs tr[data-run-id]') !== null"))  # fmt: skip
    href = browser.find_element(By.ID, "h-runs-csv").get_attribute("href")
    assert urlsplit(href).path == "/api/history/runs"
    assert "format=csv" in href
    assert "since=24h" in href  # the filters shown
    click(browser, "#h-runs-csv")
    wait(browser, lambda d: [p for p in saved.iterdir() if p.suffix == ".csv"])
    (file,) = [p for p in saved.iterdir() if p.suffix == ".csv"]
    assert file.name.startswith("cascade-runs-")
    rows = list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8"), newline="")))
    assert [(row["run_id"], row["status"]) for row in rows] == [(RUN_ID, "Failed")]
    wait(browser, lambda d: text(d, "h-download") == f"saved {file.name}: 1 row")
    click(browser, "#h-tasks-jsonl")
    wait(browser, lambda d: [p for p in saved.iterdir() if p.suffix == ".jsonl"])
    click(browser, "#h-audit-csv")
    wait(browser, lambda d: [p for p in saved.iterdir() if p.name.startswith("cascade-audit-")])
    (audit,) = [p for p in saved.iterdir() if p.name.startswith("cascade-audit-")]
    rows = list(csv.DictReader(io.StringIO(audit.read_text(encoding="utf-8"), newline="")))
    assert [row["action"] for row in rows] == ["cancelled", "cleared", "set"]  # as the table
    assert no_script_errors(browser) == []
