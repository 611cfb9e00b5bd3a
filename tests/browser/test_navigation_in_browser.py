"""The page's places in a real headless Chromium: each place loads at its own address and shows
only its own thing; the navigation is always there and marks the place shown; back and forward
go between places; a filtered runs list is an address that reopens filtered; the settings'
webhooks form adds and removes a webhook as an admin and is refused to an operator; every
control is reachable by Tab with its focus visible; the nav wraps at 800 px wide."""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from cascade.connector_kit.testing import telemetry
from cascade.connectors.mqtt import MqttConnector
from cascade.history import History
from cascade.interfaces import LifecycleEvent, TaskStateEvent
from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard, EngineThread
from .test_dashboard_in_browser import WAIT, click, no_script_errors, wait
from .test_history_in_browser import _event

pytestmark = pytest.mark.integration

# place name -> its address
PLACES = {
    "runs": "runs",
    "workflows": "workflows",
    "decisions": "decisions",
    "engines": "engines",
    "constraints": "constraints",
    "audit": "audit",
    "settings": "settings",
    "tasks": "tasks",
}
# what shows each place is itself: an element only that place holds
OWN = {
    "runs": "runs",
    "workflows": "workflows",
    "decisions": "held-tasks",
    "engines": "engines",
    "constraints": "control",
    "audit": "h-audit",
    "settings": "settings",
    "tasks": "h-tasks",
}


def path(driver: Any) -> str:
    url = urlsplit(str(driver.current_url))
    return url.path + ("?" + url.query if url.query else "")


def places_shown(driver: Any) -> list[str]:
    """The places (``div#place-NAME``) not hidden."""
    shown: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('div[id^=\"place-\"]')]"
        ".filter((e) => !e.hidden).map((e) => e.getAttribute('data-place'));"
    )
    return shown


def current(driver: Any) -> list[str]:
    """The nav's links marked as the place shown."""
    marked: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#places a[aria-current=\"page\"]')]"
        ".map((e) => e.getAttribute('data-nav'));"
    )
    return marked


def visible(driver: Any, element_id: str) -> bool:
    found = driver.find_elements(By.ID, element_id)
    return bool(found) and found[0].is_displayed()


def test_each_place_loads_at_its_address_and_shows_only_its_own_thing(
    browser: Any, dashboard: Dashboard
) -> None:
    for name, address in PLACES.items():
        browser.get(dashboard.url + address)
        wait(browser, lambda d: "connected" in d.find_element(By.ID, "connection").text)
        assert places_shown(browser) == [name], name
        assert visible(browser, OWN[name]), name
        for other, element in OWN.items():
            if other != name:
                assert not visible(browser, element), (name, other)
        assert current(browser) == ([] if name == "tasks" else [name])
        assert visible(browser, "places")
        assert visible(browser, "connection")
        assert browser.title.endswith("Cascade dashboard")
    browser.get(dashboard.url)  # / is Runs
    assert places_shown(browser) == ["runs"]
    assert current(browser) == ["runs"]
    assert no_script_errors(browser) == []


def test_the_nav_goes_between_places_and_back_and_forward_return(
    browser: Any, dashboard: Dashboard
) -> None:
    browser.get(dashboard.url)
    wait(browser, lambda d: "connected" in d.find_element(By.ID, "connection").text)
    browser.execute_script("window.cascadeLoaded = true")
    for name in ("engines", "decisions", "constraints"):
        browser.find_element(By.CSS_SELECTOR, f'#places a[data-nav="{name}"]').click()
        wait(browser, lambda d, name=name: places_shown(d) == [name])
        assert path(browser) == f"/{name}"
        assert current(browser) == [name]
    browser.back()
    wait(browser, lambda d: places_shown(d) == ["decisions"] and path(d) == "/decisions")
    assert current(browser) == ["decisions"]
    browser.back()
    wait(browser, lambda d: places_shown(d) == ["engines"])
    browser.back()
    wait(browser, lambda d: places_shown(d) == ["runs"] and path(d) == "/")
    browser.forward()
    wait(browser, lambda d: places_shown(d) == ["engines"] and current(d) == ["engines"])
    # no reload: the same document all along (a nav link is not a page load)
    assert browser.execute_script("return window.cascadeLoaded") is True
    assert no_script_errors(browser) == []


def _publish_runs(mqtt_broker: BrokerEndpoint, engine_thread: EngineThread) -> dict[str, str]:
    """Two live runs heard of: one of project etl (failing), one of project web (running). The
    publisher announces no presence: an engine that said it went offline would have lost them."""
    runs = {"etl": "a" * 31 + "1", "web": "b" * 31 + "2"}
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, source_id="places-engine", presence=False
    )

    async def publish() -> None:
        async with connector:
            for project, run_id in runs.items():
                body = TaskStateEvent(task_id="t-1", task_name="load", state="RUNNING")
                heard = telemetry(body, run_id=run_id, project_id=project, source="places-engine")
                await connector.publish(heard.topic, heard.raw, qos=1)

    engine_thread.submit(publish()).result(WAIT)
    return runs


def listed(driver: Any) -> list[str]:
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#runs tbody tr[data-run-id]')]"
        ".map((e) => e.getAttribute('data-run-id'));"
    )
    return ids


def test_a_filtered_runs_list_is_an_address_that_reopens_filtered(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    runs = _publish_runs(mqtt_broker, engine_thread)
    browser.get(dashboard.url + "runs")
    wait(browser, lambda d: sorted(listed(d)) == sorted(runs.values()))
    field = browser.find_element(By.ID, "r-project")
    field.send_keys("etl")
    field.send_keys(Keys.ENTER)
    wait(browser, lambda d: listed(d) == [runs["etl"]])
    assert path(browser) == "/runs?project=etl"
    # the address sent to someone else: a new tab opens it filtered, form and list alike
    browser.get(dashboard.url + "runs?project=web&status=running")
    assert browser.find_element(By.ID, "r-project").get_attribute("value") == "web"
    assert browser.find_element(By.ID, "r-status").get_attribute("value") == "running"
    assert listed(browser) == [runs["web"]]  # the first paint: the served state is filtered too
    wait(browser, lambda d: "connected" in d.find_element(By.ID, "connection").text)
    assert listed(browser) == [runs["web"]]
    browser.back()
    wait(browser, lambda d: listed(d) == [runs["etl"]])
    assert browser.find_element(By.ID, "r-project").get_attribute("value") == "etl"
    browser.find_element(By.ID, "r-project").clear()
    browser.find_element(By.ID, "r-name").send_keys("nobody's\n")
    wait(browser, lambda d: path(d) == "/runs?name=nobody%27s" and listed(d) == [])
    assert browser.find_element(By.ID, "no-runs").text == "no run matches"
    # a row opens its run's page
    browser.get(dashboard.url + "runs?project=etl")
    wait(browser, lambda d: listed(d) == [runs["etl"]])
    click(browser, f'tr[data-run-id="{runs["etl"]}"] button')
    wait(browser, lambda d: path(d) == f"/runs/{runs['etl']}" and places_shown(d) == ["run"])
    assert current(browser) == ["runs"]
    assert no_script_errors(browser) == []


def test_the_header_counts_what_needs_attention_with_links_to_it(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A run that failed: "1 failed in the last hour", a link to the runs list so filtered."""
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id="places-engine")
    run_id = "c" * 31 + "3"

    async def publish() -> None:
        async with connector:
            for state in ("RUNNING", "FAILED"):
                body = TaskStateEvent(task_id="t-1", task_name="load", state=state, error="boom")
                heard = telemetry(body, run_id=run_id, source="places-engine")
                await connector.publish(heard.topic, heard.raw, qos=1)
            stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="boom")
            end = telemetry(stopped, run_id=run_id, source="places-engine")
            await connector.publish(end.topic, end.raw, qos=1)

    browser.get(dashboard.url + "engines")
    engine_thread.submit(publish()).result(WAIT)
    failed = "1 failed in the last hour"
    wait(browser, lambda d: d.find_element(By.ID, "attention-failed").text == failed)
    browser.find_element(By.ID, "attention-failed").click()
    wait(browser, lambda d: places_shown(d) == ["runs"])
    assert path(browser) == "/runs?status=failed&since=1h"
    wait(browser, lambda d: listed(d) == [run_id])
    assert no_script_errors(browser) == []


ADMIN_ROLES = """
[[grant]]
role = "admin"
scopes = ["global"]
people = ["root"]

[[grant]]
role = "operator"
scopes = ["org:acme"]
people = ["olga"]
"""


@pytest.fixture
def team_board(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> Generator[Dashboard, None, None]:
    """A team's dashboard with a history: root (an admin) and olga (an operator), by tokens."""
    roles = tmp_path / "roles.toml"
    roles.write_text(ADMIN_ROLES, encoding="utf-8")
    db = tmp_path / "history.sqlite3"
    with History(db, mode="write"):  # made and migrated: where the webhooks are kept
        pass
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--roles", str(roles), "--token", f"root={TOKEN}",
                      "--token", "olga=olga-secret", "--db", str(db))  # fmt: skip
    yield board
    code = board.stop()
    assert code == 0, "".join(board.output)


def _as(browser: Any, board: Dashboard, token: str, address: str) -> None:
    """``address`` opened by the holder of ``token`` (kept in the tab, as the page keeps it)."""
    browser.get(board.url + "static/style.css")  # the origin, without the page's requests
    browser.execute_script("sessionStorage.setItem('cascade-token', arguments[0])", token)
    browser.get(board.url + address)


def webhooks(driver: Any) -> list[str]:
    rows: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#st-webhooks tbody tr[data-webhook]')]"
        ".map((e) => e.textContent);"
    )
    return rows


def test_an_admin_adds_and_removes_a_webhook_in_settings(
    browser: Any, team_board: Dashboard
) -> None:
    _as(browser, team_board, TOKEN, "settings")
    wait(browser, lambda d: visible(d, "st-add"))
    assert webhooks(browser) == []
    secret = "https://hooks.example/services/T000/B000/secret-part"
    browser.find_element(By.ID, "st-url").send_keys(secret)
    browser.find_element(By.CSS_SELECTOR, '#st-events input[value="run.succeeded"]').click()
    browser.find_element(By.ID, "st-filters").send_keys("acme/etl")
    browser.find_element(By.ID, "st-add-button").click()
    wait(browser, lambda d: len(webhooks(d)) == 1)
    (row,) = webhooks(browser)
    for said in ("run.succeeded", "acme/etl", "root"):
        assert said in row
    assert "secret-part" not in row  # the URL is a secret: shown shortened
    assert browser.find_element(By.ID, "st-status").text.startswith("added webhook ")
    assert browser.find_element(By.ID, "st-url").get_attribute("value") == ""
    browser.refresh()  # kept by the dashboard, not the page
    wait(browser, lambda d: len(webhooks(d)) == 1)
    click(browser, "#st-webhooks tr[data-webhook] button")
    wait(browser, lambda d: webhooks(d) == [])
    assert browser.find_element(By.ID, "st-status").text.startswith("removed webhook ")
    assert no_script_errors(browser) == []


def test_an_operator_is_told_settings_are_for_admins(browser: Any, team_board: Dashboard) -> None:
    """Olga (an operator) sees that Settings are for admins, no form; the API refuses her."""
    _as(browser, team_board, "olga-secret", "settings")
    said = "Settings are for admins: you are signed in as olga (operator)."
    wait(browser, lambda d: d.find_element(By.ID, "st-note").text == said)
    assert not visible(browser, "st-add")
    assert not visible(browser, "st-webhooks")
    asked = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/settings/webhooks', {method: 'POST', headers: {'Authorization':"
        " 'Bearer olga-secret', 'Content-Type': 'application/json'},"
        " body: JSON.stringify({url: 'https://hooks.example/x'})}).then((r) => done(r.status));"
    )
    assert asked == 403
    # the refusals the browser logs: that one, and the history's task statistics, which are of
    # every project (for those who see them all): nothing else
    errors = [e for e in no_script_errors(browser) if "(Forbidden)" not in e]
    assert errors == []


def _focused_outline(driver: Any) -> str:
    style: str = driver.execute_script(
        "const s = getComputedStyle(document.activeElement);"
        "return s.outlineStyle + ' ' + s.outlineWidth;"
    )
    return style


def test_every_control_is_reachable_by_tab_with_its_focus_visible(
    browser: Any, dashboard: Dashboard
) -> None:
    """Tab from the top of Constraints reaches the nav's links, then the place's controls, each
    drawn with an outline while focused (:focus-visible)."""
    browser.get(dashboard.url + "constraints")
    wait(browser, lambda d: "connected" in d.find_element(By.ID, "connection").text)
    browser.execute_script("document.activeElement && document.activeElement.blur()")
    reached: list[str] = []
    for _ in range(40):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        element = browser.switch_to.active_element
        name = element.get_attribute("id") or element.get_attribute("data-nav") or element.tag_name
        reached.append(name)
        assert _focused_outline(browser).startswith("solid"), name
        if name == "c-resume":
            break
    for expected in ("runs", "settings", "c-scope", "c-type", "c-value", "c-ttl", "c-reason",
                     "c-apply", "c-resume"):  # fmt: skip
        assert expected in reached, (expected, reached)
    assert no_script_errors(browser) == []


def test_the_page_is_usable_at_800_pixels_wide(browser: Any, dashboard: Dashboard) -> None:
    """At 800 px the nav wraps within the window: nothing of the header is off screen, and the
    page does not scroll sideways."""
    browser.set_window_size(800, 800)
    try:
        browser.get(dashboard.url + "runs")
        wait(browser, lambda d: "connected" in d.find_element(By.ID, "connection").text)
        widths = browser.execute_script(
            "const r = [...document.querySelectorAll('#places a')]"
            ".map((a) => a.getBoundingClientRect());"
            "return [document.documentElement.scrollWidth, window.innerWidth,"
            " Math.max(...r.map((b) => b.right))];"
        )
        page, window, rightmost = widths
        assert page <= window, widths
        assert rightmost <= window, widths
    finally:
        browser.set_window_size(1280, 1100)


def test_the_header_counts_the_failures_the_history_recorded_in_the_last_hour(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """With a history, "failed in the last hour" counts what it recorded (a run this dashboard
    never heard live), and links to Runs showing it among the recorded runs."""
    db = tmp_path / "history.sqlite3"
    run_id = "d" * 31 + "4"
    start = time.time() - 600
    stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}
    with History(db, mode="write") as history:
        history.store([
            _event(start, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, run_id),
            _event(start + 1, stopped, run_id),
        ])  # fmt: skip
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    try:
        browser.get(board.url + "audit")
        failed = "1 failed in the last hour"
        wait(browser, lambda d: d.find_element(By.ID, "attention-failed").text == failed)
        browser.find_element(By.ID, "attention-failed").click()
        wait(browser, lambda d: places_shown(d) == ["runs"])
        assert path(browser) == "/runs?status=failed&since=1h"
        wait(browser, lambda d: listed(d) == [run_id])
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
