"""Held tasks on the dashboard in a real headless Chromium: a run whose two tasks fail under
``on_failure="hold"`` shows both in "Needs a decision"; an operator (the dashboard's token)
clicks Retry on one (its cause fixed) and Skip on the other, and the run ends as decided."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.runtime import DependencyMissingError, Event, gate, task
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard, EngineThread
from .test_dashboard_in_browser import (
    WAIT,
    attribute,
    click,
    css,
    engine_on,
    go_to,
    no_script_errors,
    open_page,
    open_run,
    started,
    task_state,
    texts,
    wait,
)

pytestmark = pytest.mark.integration


def held_row(run_id: str, name: str) -> str:
    return f'#held-tasks tr[data-run-id="{run_id}"][data-task-id^="{name}-"]'


def status(driver: Any, line: str = "held-status") -> str:
    text: str = driver.execute_script(
        "return document.getElementById(arguments[0]).textContent", line
    )
    return text


def said(driver: Any, start: str, line: str = "held-status") -> None:
    """Wait until the decision's status line (``line``: its id) starts with ``start``; else fail
    saying it."""
    try:
        wait(driver, lambda d: status(d, line).startswith(start))
    except Exception:
        raise AssertionError(f"the page says {status(driver, line)!r}, not {start!r}...") from None


def test_an_operator_retries_one_held_task_and_skips_the_other(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    suffix = uuid.uuid4().hex[:8]
    fixed = threading.Event()

    @task(name=f"load_{suffix}", on_failure="hold")
    def load(n: int) -> int:
        if not fixed.is_set():
            raise ConnectionError("the API is down")
        return n * 10

    @task(name=f"report_{suffix}")
    def report(rows: int) -> str:
        return f"{rows} rows"

    @task(name=f"side_{suffix}", on_failure="hold")
    def side(n: int) -> int:
        raise ValueError(f"side {n} is broken")

    open_page(browser, dashboard)
    go_to(browser, "decisions")
    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    run = engine_thread.submit(engine.run([report(load(4)), side(1)]))
    run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(events))))
    load_row, side_row = held_row(run_id, f"load_{suffix}"), held_row(run_id, f"side_{suffix}")
    wait(browser, lambda d: css(d, load_row) and css(d, side_row))
    assert not browser.find_element(By.ID, "held").get_attribute("hidden")
    assert texts(browser, f"{load_row} .error") == ["ConnectionError: the API is down"]
    assert texts(browser, f"{side_row} .error") == ["ValueError: side 1 is broken"]
    assert attribute(browser, f'{load_row} button[data-decision="retry"]', "data-decision")
    open_run(browser, run_id)
    wait(browser, lambda d: task_state(d, f"load_{suffix}") == "HELD")
    assert task_state(browser, f"report_{suffix}") is None  # waits on load: not started
    assert not run.done()

    assert not run.done()
    # the header says what waits on a decision, and links to it
    wait(browser, lambda d: d.find_element(By.ID, "attention-held").text == "2 held")
    browser.find_element(By.ID, "attention-held").click()
    wait(browser, lambda d: d.find_element(By.ID, "place-decisions").is_displayed())

    fixed.set()  # the API is back
    browser.find_element(By.ID, "held-reason").send_keys("API back")
    click(browser, f'{load_row} button[data-decision="retry"]')
    said(browser, "done: retried")
    wait(browser, lambda d: not css(d, load_row))
    click(browser, f'{side_row} button[data-decision="skip"]')
    said(browser, "done: skipped")

    with pytest.raises(DependencyMissingError):  # side skipped: it has no result
        run.result(WAIT)
    wait(browser, lambda d: not d.find_element(By.ID, "attention-held").is_displayed())
    browser.back()  # the run's page
    wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Succeeded")
    wait(browser, lambda d: task_state(d, f"side_{suffix}") == "SKIPPED")
    assert task_state(browser, f"load_{suffix}") == "COMPLETED"
    assert task_state(browser, f"report_{suffix}") == "COMPLETED"
    wait(browser, lambda d: not css(d, side_row))
    assert no_script_errors(browser) == []


def test_an_operator_approves_a_gate_shown_with_its_prompt(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A gate is listed awaiting approval with its prompt and only Approve, Reject and Skip;
    Approve with the value field empty gives its dependent true."""
    suffix = uuid.uuid4().hex[:8]

    @task(name=f"deploy_{suffix}")
    def deploy(approval: Any) -> str:
        return f"deployed ({approval!r})"

    open_page(browser, dashboard)
    go_to(browser, "decisions")
    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    approval = gate(f"Deploy {suffix} to production?", name=f"approve_{suffix}")
    run = engine_thread.submit(engine.run(deploy(approval)))
    run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(events))))
    gate_row = held_row(run_id, f"approve_{suffix}")
    wait(browser, lambda d: css(d, gate_row))
    assert texts(browser, f"{gate_row} .approval") == [
        f"awaiting approval: Deploy {suffix} to production?"
    ]
    buttons = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(b => b.textContent);",
        f"{gate_row} button[data-decision]",
    )
    assert buttons == ["Approve", "Reject", "Skip"]
    browser.find_element(By.ID, "held-reason").send_keys("canary is green")
    click(browser, f'{gate_row} button[data-decision="complete"]')
    said(browser, "done: completed")
    assert run.result(WAIT) == "deployed (True)"
    wait(browser, lambda d: not css(d, gate_row))
    assert no_script_errors(browser) == []
