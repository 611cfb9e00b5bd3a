"""The dashboard in a real headless Chromium: live runs, controls that steer an engine, no XSS."""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from cascade.connector_kit.testing import telemetry
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import LifecycleEvent, StatusMessage, TaskStateEvent, status_topic
from cascade.runtime import Engine, Event, RunStarted, TaskBlocked, TaskRunning, task
from cascade.testkit import BrokerEndpoint

from .conftest import ROOT, TOKEN, Dashboard, EngineThread

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"
WAIT = 30


def wait(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


# The page redraws its tables a few times a second: read and click in one step in the page,
# never through an element found earlier (it may be gone by then).
def attribute(driver: Any, selector: str, name: str) -> str | None:
    """``name`` of the first element matching ``selector``, or ``None``."""
    value: str | None = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null;",
        selector,
        name,
    )
    return value


def texts(driver: Any, selector: str) -> list[str]:
    """The text of every element matching ``selector``."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);", selector
    )
    return found


def click(driver: Any, selector: str) -> None:
    """Click the first element matching ``selector`` once there is one."""
    script = "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;"
    wait(driver, lambda d: d.execute_script(script, selector))


def open_page(driver: Any, dashboard: Dashboard, token: str | None = TOKEN) -> None:
    driver.get(dashboard.url)
    wait(driver, lambda d: "connected" in d.find_element(By.ID, "connection").text)
    if token is not None:
        field = driver.find_element(By.ID, "token")
        field.send_keys(token)


def no_script_errors(driver: Any) -> list[str]:
    """What the page logged as errors (a missing favicon aside, and the 401 of /api/me that
    the browser logs when nobody signed in: the page asks it who signed in on every start)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
        and "favicon" not in entry["message"]
        and not ("/api/me " in entry["message"] and "status of 401" in entry["message"])
    ]


def engine_on(broker: BrokerEndpoint, events: list[Event]) -> Engine:
    connector = MqttConnector(broker.host, broker.port, source_id=f"engine-{uuid.uuid4().hex[:6]}")
    engine = Engine(connector, heartbeat_interval=0.5)
    engine.events.subscribe(events.append)
    return engine


def started(events: list[Event]) -> str | None:
    """The id of the run the engine started, once it has."""
    return next((e.run_id for e in events if isinstance(e, RunStarted)), None)


def go_to(driver: Any, place: str) -> None:
    """The place ``place`` (``runs``, ``constraints``, ...), by its link in the page's nav."""
    click(driver, f'#places a[data-nav="{place}"]')
    wait(driver, lambda d: d.find_element(By.ID, f"place-{place}").is_displayed())


def open_run(driver: Any, run_id: str) -> None:
    """The run's page, from its row in the Runs list."""
    go_to(driver, "runs")
    click(driver, f'#runs tr[data-run-id="{run_id}"] button')
    wait(driver, lambda d: d.find_element(By.ID, "rp-id").text == run_id)


def task_state(driver: Any, name_prefix: str) -> str | None:
    return attribute(driver, f'#rp-timeline [data-task-id^="{name_prefix}"]', "data-state")


def test_pause_holds_matching_tasks_and_resume_releases_them(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """Pause from the page: the engine holds the matching task (not the other); clear: it runs."""
    name = f"held_{uuid.uuid4().hex[:8]}"
    ran = threading.Event()

    @task(name=name)
    def held() -> str:
        ran.set()
        return "held"

    @task(name=f"free_{name}")
    def free() -> str:
        return "free"

    open_page(browser, dashboard)
    go_to(browser, "constraints")
    browser.find_element(By.ID, "c-scope").clear()
    browser.find_element(By.ID, "c-scope").send_keys(f"task:{name}")
    Select(browser.find_element(By.ID, "c-type")).select_by_value("pause")
    browser.find_element(By.ID, "c-apply").click()
    wait(browser, lambda d: d.find_element(By.ID, "control-status").text.startswith("done:"))
    wait(browser, lambda d: css(d, f'#constraints tr[data-scope="task:{name}"]'))

    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    run = engine_thread.submit(engine.run([held(), free()]))
    run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(events))))
    open_run(browser, run_id)
    wait(browser, lambda d: task_state(d, "free_") == "COMPLETED")
    wait(browser, lambda d: task_state(d, name) == "BLOCKED")
    seen = engine_thread.call(lambda: list(events))
    assert any(isinstance(e, TaskBlocked) and e.task_name == name for e in seen)
    assert not any(isinstance(e, TaskRunning) and e.task_name == name for e in seen)
    assert not ran.is_set()
    assert not run.done()

    go_to(browser, "constraints")
    click(browser, f'#constraints tr[data-scope="task:{name}"] button')
    wait(browser, lambda d: "cleared" in d.find_element(By.ID, "control-status").text)
    assert run.result(WAIT) == ["held", "free"]
    assert ran.is_set()
    browser.back()  # the run's page, again
    wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Succeeded")
    wait(browser, lambda d: task_state(d, name) == "COMPLETED")
    assert texts(browser, "#rp-failures li") == ["none"]
    assert attribute(browser, f'tr[data-run-id="{run_id}"] .progress', "data-progress") == "1.0000"
    assert not css(browser, f'#constraints tr[data-scope="task:{name}"]')
    assert no_script_errors(browser) == []


def test_without_the_token_the_page_cannot_steer(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint
) -> None:
    """A wrong token: the control request is refused with the server's reason. A dashboard
    without sign-in shows no "Sign out" (its form's display once overrode ``hidden``)."""
    open_page(browser, dashboard, token="wrong")
    assert not browser.find_element(By.ID, "sign-out").is_displayed()
    go_to(browser, "constraints")
    browser.find_element(By.ID, "c-apply").click()
    wait(browser, lambda d: d.find_element(By.ID, "control-status").text.startswith("refused"))
    assert "bearer token" in browser.find_element(By.ID, "control-status").text
    assert not css(browser, '#constraints tr[data-scope="global"]')


def test_attacker_controlled_text_is_shown_never_run(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A task named <img src=x onerror=alert(1)> failing with such an error: text, no script."""

    @task(name=XSS)
    def evil() -> None:
        raise ValueError(XSS)

    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    open_page(browser, dashboard)
    run = engine_thread.submit(engine.run(evil()))
    with pytest.raises(Exception, match="onerror"):
        run.result(WAIT)
    run_id = started(events)
    assert run_id is not None
    open_run(browser, run_id)
    wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Failed")
    wait(browser, lambda d: XSS in d.find_element(By.ID, "rp-failures").text)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - the property raises when no alert is open
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert XSS in browser.find_element(By.ID, "rp-failures").text
    assert XSS in texts(browser, "#rp-timeline .tl-name")
    # its traceback, under its failure, is text too: the line that raised, and the error
    shown = browser.execute_script(
        "const pre = document.querySelector('#rp-failures .traceback pre');"
        "return pre && pre.children.length === 0 ? pre.textContent : null"
    )
    assert shown is not None
    assert "raise ValueError(XSS)" in shown
    assert shown.endswith(f"ValueError: {XSS}\n")
    assert no_script_errors(browser) == []


def test_demo_shows_a_live_run(browser: Any) -> None:
    """`cascade dashboard --demo`: a run appears and fills its timeline, live, on its own broker.

    With CASCADE_DASHBOARD_SCREENSHOT=path the page is saved there (docs/dashboard.png for the
    README: CASCADE_DASHBOARD_SCREENSHOT=docs/dashboard.png).
    """
    demo = Dashboard("--demo")
    try:
        printed = re.search(r"open (http://\S+#token=\S+) ", "".join(demo.output))
        assert printed, demo.output
        browser.get(printed.group(1))
        wait(browser, lambda d: d.find_element(By.ID, "mode").text == "controls enabled")
        assert "#token" not in browser.current_url
        kept = "return [sessionStorage.getItem('cascade-token'), localStorage.length];"
        assert browser.execute_script(kept) == [printed.group(1).split("#token=")[1], 0]
        run_id = wait(browser, lambda d: attribute(d, "#runs tbody tr[data-run-id]", "data-run-id"))
        open_run(browser, run_id)
        # the demo's six extracts are one row under the time axis; opened, a row each, kept
        # open while the page repaints
        extracts = '#rp-timeline .tl-name[data-group="extract"]'
        wait(browser, lambda d: css(d, extracts))
        assert texts(browser, "#rp-timeline .tl-axis .tl-tick")[0] == "+0s"
        click(browser, f"{extracts} button")
        done = '#rp-timeline .tl-member[data-state="COMPLETED"]'
        wait(browser, lambda d: len(css(d, done)) >= 3)
        painted = browser.execute_script("return window.cascadeRepaints")
        wait(browser, lambda d: d.execute_script("return window.cascadeRepaints") > painted + 2)
        assert texts(browser, f"{extracts} button")[0].startswith("\u25be extract \u00d7")
        assert len(css(browser, done)) >= 3
        wait(browser, lambda d: css(d, "#constraints tr[data-scope='task:api_*']"))
        assert browser.execute_script("return window.cascadeRepaints") > 1
        target = os.environ.get("CASCADE_DASHBOARD_SCREENSHOT")
        if target:
            wait(
                browser,
                lambda d: css(d, "#rp-timeline .s-BLOCKED") and css(d, "#rp-failures .error"),
            )
            path = Path(target) if Path(target).is_absolute() else ROOT / target
            path.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(path))
        assert no_script_errors(browser) == []
    finally:
        code = demo.stop()
    assert code == 0, "".join(demo.output)


def events(driver: Any) -> dict[str, int]:
    """How many snapshots and changes the page's stream has applied."""
    counted: dict[str, int] = driver.execute_script("return {...window.cascadeEvents}")
    return counted


def test_the_page_applies_changes_without_reloading(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A run appears and ends on the page from its stream's changes: one snapshot, then
    deltas; the page is neither reloaded nor reconnected."""
    release = threading.Event()

    @task(name=f"slow_{uuid.uuid4().hex[:6]}")
    def slow() -> str:
        release.wait(WAIT)
        return "done"

    open_page(browser, dashboard, token=None)
    browser.execute_script("window.notReloaded = true;")
    wait(browser, lambda d: events(d)["snapshot"] == 1)
    recorded: list[Event] = []
    run = engine_thread.submit(engine_on(mqtt_broker, recorded).run(slow()))
    run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
    status = f'tr[data-run-id="{run_id}"] td:nth-child(4)'  # run, name, project, status
    wait(browser, lambda d: texts(d, status) == ["Running"])
    applied = events(browser)["delta"]
    release.set()
    assert run.result(WAIT) == "done"
    wait(browser, lambda d: texts(d, status) == ["Succeeded"])
    assert events(browser)["delta"] > applied
    assert events(browser)["snapshot"] == 1
    assert browser.execute_script("return window.notReloaded") is True
    assert browser.execute_script("return window.cascadeReconnects") == 0
    assert no_script_errors(browser) == []


def test_runs_and_engines_come_a_page_at_a_time(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """Two rows a page (?rows=2), three runs of three engines: next and previous page through
    them, newest first; the engine filter narrows runs and engines to that engine."""
    project = f"page{uuid.uuid4().hex[:6]}"

    @task(name="quick")
    def quick() -> int:
        return 1

    runs: list[str] = []
    sources: list[str] = []
    for n in range(3):
        recorded: list[Event] = []
        sources.append(f"{project}-engine-{n}")
        connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=sources[-1])
        engine = Engine(connector, project_id=project)
        engine.events.subscribe(recorded.append)
        engine_thread.submit(engine.run(quick())).result(WAIT)
        run_id = started(recorded)
        assert run_id is not None
        runs.append(run_id)
    browser.get(dashboard.url + "?rows=2")
    browser.find_element(By.ID, "r-project").send_keys(project)
    click(browser, "#r-show")
    listed = "#runs tbody tr[data-run-id]"
    newest = [runs[2], runs[1]]
    wait(browser, lambda d: [attribute(d, f"{listed}:nth-child({n})", "data-run-id")
                             for n in (1, 2)] == newest)  # fmt: skip
    wait(browser, lambda d: d.find_element(By.ID, "runs-count").text == "runs 1\u20132 of 3")
    click(browser, "#runs-next:not([disabled])")
    wait(browser, lambda d: texts(d, f"{listed} td:first-child") == [runs[0][:12]])
    assert browser.find_element(By.ID, "runs-count").text == "runs 3 of 3"
    click(browser, "#runs-prev:not([disabled])")
    wait(browser, lambda d: len(css(d, listed)) == 2)
    browser.find_element(By.ID, "r-engine").send_keys(sources[1])
    click(browser, "#r-show")
    wait(browser, lambda d: texts(d, f"{listed} td:first-child") == [runs[1][:12]])
    wait(browser, lambda d: texts(d, "#engines tbody td:first-child") == [sources[1]])
    assert browser.find_element(By.ID, "runs-count").text == "runs 1 of 1 matching (3 in all)"
    assert no_script_errors(browser) == []


def test_fleet_mode_shows_the_summaries_and_reads_a_run_when_it_is_opened(
    browser: Any, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A `--fleet-threshold 0` dashboard: the page says it is in fleet mode, the engine's row
    shows its summary's figures and the run is "from summary"; opened, its tasks appear."""
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--fleet-threshold", "0")  # fmt: skip
    release = threading.Event()
    name = f"held_{uuid.uuid4().hex[:6]}"

    @task(name=name)
    def held() -> str:
        release.wait(WAIT)
        return "done"

    recorded: list[Event] = []
    engine = engine_on(mqtt_broker, recorded)
    source = engine.connector.source_id  # type: ignore[union-attr]
    run = engine_thread.submit(engine.run(held()))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        open_page(browser, board, token=None)
        wait(browser, lambda d: d.find_element(By.ID, "fleet-mode").text.startswith("Fleet mode"))
        row = f'#engines tr[data-source="{source}"] td'
        wait(browser, lambda d: "running 1" in " ".join(texts(d, row)))
        wait(browser, lambda d: "from summary" in " ".join(texts(d, f'tr[data-run-id="{run_id}"]')))
        assert task_state(browser, name) is None  # its events are not read yet
        open_run(browser, run_id)
        wait(browser, lambda d: task_state(d, name) == "RUNNING")
        release.set()
        assert run.result(WAIT) == "done"
        wait(browser, lambda d: task_state(d, name) == "COMPLETED")
        assert no_script_errors(browser) == []
    finally:
        release.set()
        code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


async def sources_that_missed(broker: BrokerEndpoint, sources: int) -> None:
    """``sources`` engines online, each with a run whose events 2 to 4 it never sent."""
    async with MqttConnector(broker.host, broker.port, presence=False) as connector:
        for n in range(sources):
            source, run_id = f"gappy-{n:02}", uuid.uuid4().hex
            said = StatusMessage(status="online", source=source, session=1)
            await connector.publish(status_topic(source), said, qos=1, retain=True)
            start = LifecycleEvent(event="ENGINE_STARTED", tasks=2)
            running = TaskStateEvent(task_id="t-1", task_name="t", state="RUNNING")
            for body, seq in ((start, 1), (running, 5)):
                message = telemetry(body, run_id=run_id, source=source, seq=seq)
                await connector.publish(message.topic, message.raw, qos=1)
        await connector.flush()
        for n in range(sources):  # cleared, as `cascade forget` does: the broker is shared
            await connector.publish(status_topic(f"gappy-{n:02}"), b"", qos=1, retain=True)
        await connector.flush()


def test_what_many_sources_missed_is_summed_up_not_listed(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """Twelve sources missed events: the page names the ten that missed most and says how
    many more there are, as the state's totals say; the note links to Problems, which lists
    every one of them (from /api/problems/missed) as a table."""
    open_page(browser, dashboard)
    engine_thread.submit(sources_that_missed(mqtt_broker, 12)).result(WAIT)
    wait(browser, lambda d: "and 2 more sources" in d.find_element(By.ID, "missed").text)
    said = browser.find_element(By.ID, "missed").text
    assert said.count("missed 3 events from gappy-") == 10
    browser.find_element(By.ID, "missed").click()
    listed = "#p-missed tbody tr[data-source^='gappy-']"
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, listed)) == 12)
    assert urlsplit(browser.current_url).path == "/problems"
    assert browser.title == "Problems · Cascade dashboard"
    rows = [texts(browser, f"#p-missed tr[data-source='gappy-{n:02}'] td") for n in range(12)]
    assert [cells[:2] for cells in rows] == [[f"gappy-{n:02}", "3"] for n in range(12)]
    assert not browser.find_element(By.ID, "place-runs").is_displayed()  # only its own thing
    assert no_script_errors(browser) == []
