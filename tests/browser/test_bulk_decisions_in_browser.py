"""Decisions in bulk in a real headless Chromium, on a real mosquitto, in a team's dashboard:
an operator opens Decisions at an address whose query filters 3 of an engine's 5 held tasks
(the testkit's ``HoldingEngine``), sees the 3 and their count, asks what a skip would decide
(the dry run: nothing sent), confirms, and sees each decided; the engine received exactly
those 3. A viewer sees the matches (which follow the live list) but no bulk action, and the
API refuses their decision; a filter typed in is an address that back returns from; a task
decided meanwhile is said refused on its row, never dropped; a bulk decision of 10 has at most
4 of its requests in flight at once."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import BrokerEndpoint, HeldTask, HoldingEngine

from .conftest import Dashboard, EngineThread
from .test_dashboard_in_browser import WAIT, click, css, no_script_errors, texts, wait

pytestmark = pytest.mark.integration

ROLES = """
[[grant]]
role = "operator"
scopes = ["global"]
people = ["olga"]

[[grant]]
role = "viewer"
scopes = ["global"]
people = ["vera"]
"""


@pytest.fixture
def team_board(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> Generator[Dashboard, None, None]:
    """A team's dashboard: olga (an operator) and vera (a viewer), by tokens."""
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES, encoding="utf-8")
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--roles", str(roles), "--token", "olga=olga-secret",
                      "--token", "vera=vera-secret")  # fmt: skip
    yield board
    code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


def _holding(
    mqtt_broker: BrokerEndpoint, engine_thread: EngineThread, loads: int, others: bool
) -> Generator[tuple[HoldingEngine, str], None, None]:
    """An engine's run with ``loads`` held tasks ``load_<suffix>_*`` (ids ``load-1`` on), and
    with ``others`` a ``side`` and a ``report`` held too; and the suffix."""
    suffix = uuid.uuid4().hex[:8]
    tasks = [HeldTask(f"load-{n}", f"load_{suffix}_{n}") for n in range(1, loads + 1)]
    if others:
        tasks += [HeldTask("side-1", f"side_{suffix}"), HeldTask("report-1", f"report_{suffix}")]
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=f"engine-{suffix}")
    engine = HoldingEngine(connector, uuid.uuid4().hex, tasks, heartbeat_every=2.0)

    async def start() -> None:
        await connector.connect()
        await engine.start()

    engine_thread.submit(start()).result(WAIT)
    yield engine, suffix

    async def stop() -> None:
        await engine.stop()
        await connector.disconnect()

    engine_thread.submit(stop()).result(WAIT)


@pytest.fixture
def holding(
    mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> Generator[tuple[HoldingEngine, str], None, None]:
    """An engine's run with 5 held tasks: 3 ``load_<suffix>_*``, a ``side`` and a ``report``;
    and the suffix."""
    yield from _holding(mqtt_broker, engine_thread, 3, others=True)


@pytest.fixture
def holding_ten(
    mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> Generator[tuple[HoldingEngine, str], None, None]:
    """An engine's run with 10 held tasks ``load_<suffix>_*``; and the suffix."""
    yield from _holding(mqtt_broker, engine_thread, 10, others=False)


def _as(browser: Any, board: Dashboard, token: str, address: str) -> None:
    """``address`` opened by the holder of ``token`` (kept in the tab, as the page keeps it)."""
    browser.get(board.url + "static/style.css")  # the origin, without the page's requests
    browser.execute_script("sessionStorage.setItem('cascade-token', arguments[0])", token)
    browser.get(board.url + address)


def matched(driver: Any) -> list[str]:
    """The task ids the bulk list shows."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#bulk-tasks tbody tr[data-task-id]')]"
        ".map((e) => e.getAttribute('data-task-id'));"
    )
    return found


def outcomes(driver: Any) -> list[str]:
    return texts(driver, "#bulk-tasks tbody [data-outcome]")


def shown(driver: Any, element_id: str) -> bool:
    return bool(driver.find_element(By.ID, element_id).is_displayed())


def test_an_operator_skips_the_3_held_tasks_a_filter_matches_after_a_dry_run(
    browser: Any,
    team_board: Dashboard,
    holding: tuple[HoldingEngine, str],
    engine_thread: EngineThread,
) -> None:
    engine, suffix = holding
    _as(browser, team_board, "olga-secret", "decisions")
    wait(browser, lambda d: len(css(d, "#held-tasks tr[data-task-id]")) == 5)
    wait(browser, lambda d: len(matched(d)) == 5)  # no filter: every held task

    # a filtered list is a link: opened at its address, the filter is in the fields
    _as(browser, team_board, "olga-secret", f"decisions?task=load_{suffix}_*")
    wait(browser, lambda d: sorted(matched(d)) == ["load-1", "load-2", "load-3"])
    field = browser.find_element(By.ID, "bulk-task")
    assert field.get_attribute("value") == f"load_{suffix}_*"
    assert browser.find_element(By.ID, "bulk-count").text == "3 held tasks match"
    assert shown(browser, "bulk-controls")

    Select(browser.find_element(By.ID, "bulk-decision")).select_by_value("skip")
    browser.find_element(By.ID, "bulk-reason").send_keys("the source is gone")
    click(browser, "#bulk-preview")
    wait(browser, lambda d: shown(d, "bulk-plan"))
    said = browser.find_element(By.ID, "bulk-plan-said").text
    assert said == "would skip 3 held tasks (reason: the source is gone)"
    assert outcomes(browser) == ["would skip"] * 3
    assert engine_thread.call(lambda: list(engine.requests)) == []  # the dry run sent nothing

    click(browser, "#bulk-confirm")
    wait(browser, lambda d: outcomes(d) == ["skipped"] * 3)
    wait(browser, lambda d: d.find_element(By.ID, "bulk-status").text == "done: skipped 3 of 3")
    requests = engine_thread.call(lambda: list(engine.requests))
    assert sorted(r.task for r in requests) == ["load-1", "load-2", "load-3"]
    assert {(r.decision, r.attempt, r.issued_by, r.reason) for r in requests} == {
        ("skip", 1, "olga", "the source is gone")
    }
    assert len(engine_thread.call(lambda: list(engine.applied))) == 3
    # the live list keeps only the two not decided
    wait(browser, lambda d: len(css(d, "#held-tasks tr[data-task-id]")) == 2)
    assert no_script_errors(browser) == []


def test_a_viewer_sees_the_matches_but_no_bulk_action_and_the_api_refuses_it(
    browser: Any,
    team_board: Dashboard,
    holding: tuple[HoldingEngine, str],
    engine_thread: EngineThread,
) -> None:
    engine, suffix = holding
    _as(browser, team_board, "vera-secret", "decisions")
    wait(browser, lambda d: len(css(d, "#held-tasks tr[data-task-id]")) == 5)
    _as(browser, team_board, "vera-secret", f"decisions?task=load_{suffix}_*")
    wait(browser, lambda d: sorted(matched(d)) == ["load-1", "load-2", "load-3"])
    assert not shown(browser, "bulk-controls")
    assert not shown(browser, "bulk-preview")
    assert not shown(browser, "bulk-confirm")
    # a filter typed in is a new address; back returns to the one before, filter and all
    browser.find_element(By.ID, "bulk-error").send_keys("nothing like it")
    click(browser, "#bulk-filter")
    wait(browser, lambda d: d.find_element(By.ID, "bulk-count").text == "0 held tasks match")
    assert "error=nothing+like+it" in browser.current_url
    assert f"task=load_{suffix}_*" in unquote(browser.current_url)
    browser.back()
    wait(browser, lambda d: sorted(matched(d)) == ["load-1", "load-2", "load-3"])
    assert browser.find_element(By.ID, "bulk-error").get_attribute("value") == ""
    asked = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(`/api/runs/${arguments[0]}/tasks/load-1/decide`, {method: 'POST', headers:"
        " {'Authorization': 'Bearer vera-secret', 'Content-Type': 'application/json'},"
        " body: JSON.stringify({decision: 'skip', attempt: 1})}).then((r) => done(r.status));",
        engine.run_id,
    )
    assert asked == 403
    assert engine_thread.call(lambda: list(engine.requests)) == []
    # decided elsewhere (by olga), load-1 leaves the matches by itself: they follow the live list
    asked = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(`/api/runs/${arguments[0]}/tasks/load-1/decide`, {method: 'POST', headers:"
        " {'Authorization': 'Bearer olga-secret', 'Content-Type': 'application/json'},"
        " body: JSON.stringify({decision: 'skip', attempt: 1})}).then((r) => done(r.status));",
        engine.run_id,
    )
    assert asked == 200
    wait(browser, lambda d: sorted(matched(d)) == ["load-2", "load-3"])
    assert browser.find_element(By.ID, "bulk-count").text == "2 held tasks match"


def test_a_task_decided_meanwhile_is_reported_refused_on_its_row(
    browser: Any,
    team_board: Dashboard,
    holding: tuple[HoldingEngine, str],
    engine_thread: EngineThread,
) -> None:
    """Between the dry run and the confirm, someone else fails ``load-2``: the bulk retry
    applies to the other two and says on ``load-2``'s row that the engine refused it, why."""
    engine, suffix = holding
    _as(browser, team_board, "olga-secret", f"decisions?task=load_{suffix}_*")
    wait(browser, lambda d: sorted(matched(d)) == ["load-1", "load-2", "load-3"])
    click(browser, "#bulk-preview")  # retry, the first decision
    wait(browser, lambda d: outcomes(d) == ["would retry"] * 3)
    asked = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(`/api/runs/${arguments[0]}/tasks/load-2/decide`, {method: 'POST', headers:"
        " {'Authorization': 'Bearer olga-secret', 'Content-Type': 'application/json'},"
        " body: JSON.stringify({decision: 'fail', attempt: 1})}).then((r) => done(r.status));",
        engine.run_id,
    )
    assert asked == 200
    click(browser, "#bulk-confirm")
    status = "done: retried 2 of 3, 1 refused (each row says why)"
    wait(browser, lambda d: d.find_element(By.ID, "bulk-status").text == status)
    rows = dict(zip(matched(browser), outcomes(browser), strict=True))
    assert rows["load-1"] == rows["load-3"] == "retried"
    assert rows["load-2"].startswith("refused: ")
    assert "already decided" in rows["load-2"]
    applied = engine_thread.call(lambda: [(r.task, r.decision) for r in engine.applied])
    assert sorted(applied) == [("load-1", "retry"), ("load-2", "fail"), ("load-3", "retry")]


# Holds the page's listings of held tasks (GET /api/held) until window.releaseListings(), and
# counts in window.listingsTaken those whose answer the page has read and acted on (a task
# after the one that reads its body: api.js awaits response.json(), then the page draws).
HOLD_LISTINGS = """
const held = window.heldListings = [];
window.listingsTaken = 0;
const send = window.fetch;
const counted = (response) => {
  const read = response.json.bind(response);
  response.json = () => read().then((body) => {
    setTimeout(() => { window.listingsTaken += 1; }, 0);
    return body;
  });
  return response;
};
window.fetch = (url, options) => {
  if (!String(url).startsWith("/api/held") || (options && options.method !== "GET")) {
    return send.call(window, url, options);
  }
  const go = (resolve) => () => resolve(send.call(window, url, options).then(counted));
  return new Promise((resolve) => held.push(go(resolve)));
};
window.releaseListings = () => { for (const go of held.splice(0)) go(); };
"""


def test_a_listing_answered_after_a_dry_run_does_not_wipe_its_plan(
    browser: Any,
    team_board: Dashboard,
    holding: tuple[HoldingEngine, str],
) -> None:
    """A listing asked before the dry run (the live held list changed, or the filter was sent
    again) and answered after it once redrew the rows without the plan's outcomes, and the
    plan's rows stayed blank (seen under load: a CI run's bulk retry never said "would")."""
    _engine, suffix = holding
    _as(browser, team_board, "olga-secret", f"decisions?task=load_{suffix}_*")
    wait(browser, lambda d: sorted(matched(d)) == ["load-1", "load-2", "load-3"])
    browser.execute_script(HOLD_LISTINGS)
    click(browser, "#bulk-filter")  # a listing asked: held in flight
    # at least that one: under load the live held list may still be filling (the engine holds
    # 5 tasks, the filter matches 3), and each change of it asks again (a CI run saw 2)
    wait(browser, lambda d: d.execute_script("return window.heldListings.length;") >= 1)
    click(browser, "#bulk-preview")
    wait(browser, lambda d: outcomes(d) == ["would retry"] * 3)
    asked = browser.execute_script("return window.heldListings.length;")
    browser.execute_script("window.releaseListings();")
    wait(browser, lambda d: d.execute_script("return window.listingsTaken;") == asked)
    assert outcomes(browser) == ["would retry"] * 3  # the plan stands
    assert not browser.find_element(By.ID, "bulk-plan").get_attribute("hidden")


# Counts the page's decide requests in flight (sent, not yet answered) and the most at once.
# api.js calls the global fetch at each request, so the page's own requests pass through here.
COUNT_DECIDES_IN_FLIGHT = """
const flight = window.decidesInFlight = { now: 0, most: 0, sent: 0 };
const send = window.fetch;
window.fetch = (url, options) => {
  if (!(options && options.method === "POST" && String(url).endsWith("/decide"))) {
    return send.call(window, url, options);
  }
  flight.now += 1;
  flight.sent += 1;
  flight.most = Math.max(flight.most, flight.now);
  return send.call(window, url, options).finally(() => { flight.now -= 1; });
};
"""


def test_a_bulk_decision_has_at_most_four_requests_in_flight_at_once(
    browser: Any,
    team_board: Dashboard,
    holding_ten: tuple[HoldingEngine, str],
    engine_thread: EngineThread,
) -> None:
    """10 held tasks skipped at once: every one is decided, never more than 4 requests in
    flight (the page sends the first 4 together, so it uses the 4 too)."""
    engine, suffix = holding_ten
    _as(browser, team_board, "olga-secret", f"decisions?task=load_{suffix}_*")
    wait(browser, lambda d: len(matched(d)) == 10)
    browser.execute_script(COUNT_DECIDES_IN_FLIGHT)
    Select(browser.find_element(By.ID, "bulk-decision")).select_by_value("skip")
    click(browser, "#bulk-preview")
    wait(browser, lambda d: outcomes(d) == ["would skip"] * 10)
    click(browser, "#bulk-confirm")
    wait(browser, lambda d: d.find_element(By.ID, "bulk-status").text == "done: skipped 10 of 10")
    flight = browser.execute_script("return window.decidesInFlight;")
    assert (flight["sent"], flight["most"], flight["now"]) == (10, 4, 0)
    requests = engine_thread.call(lambda: list(engine.requests))
    assert sorted(r.task for r in requests) == sorted(f"load-{n}" for n in range(1, 11))
    assert no_script_errors(browser) == []
