"""A loop in the dashboard's History section, in a real headless Chromium: a run whose loop ran
600 iterations shows one row for the loop, in its timeline and its tasks table, with its
iterations counted by state and its latest; opened, it loads its iterations a page at a
time; a task whose name has an '@' keeps its own row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cascade.history import History, Received
from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard
from .test_dashboard_in_browser import click, css, no_script_errors, texts, wait
from .test_history_in_browser import _event

pytestmark = pytest.mark.integration

RUN_ID = "a9a9000000000000000000000000100b"
ITERATIONS = 600  # counter-2@2 .. counter-2@601, the last failing
LAST = ITERATIONS + 1


def _task(ts: float, task_id: str, name: str, state: str, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(ts, {**body, **extra}, RUN_ID)


def _record_looping_run(path: Path) -> None:
    start = time.time() - 3600
    stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}
    batch = [
        _event(start, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, RUN_ID),
        _task(start + 1, "counter-2", "counter", "RUNNING"),
        _task(start + 1, "mail@home-3", "mail@home", "COMPLETED"),
    ]
    for number in range(2, LAST + 1):
        at = start + 1 + number / LAST
        batch.append(_task(at, f"counter-2@{number}", "counter", "RUNNING"))
        if number < LAST:
            batch.append(_task(at, f"counter-2@{number}", "counter", "COMPLETED"))
    batch += [
        _task(start + 3, f"counter-2@{LAST}", "counter", "FAILED", error="too far"),
        _task(start + 3, "counter-2", "counter", "FAILED", error="too far"),
        _event(start + 4, stopped, RUN_ID),
    ]
    with History(path, mode="write") as history:
        history.store(batch)


def test_a_loop_is_one_row_that_opens_to_its_iterations(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    _record_looping_run(db)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    try:
        browser.get(board.url)
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{RUN_ID}"]'))
        click(browser, f'#h-runs tr[data-run-id="{RUN_ID}"] button')
        row = '#rp-timeline [data-map="counter-2"]'
        wait(browser, lambda d: css(d, row))
        count, latest, text, title = browser.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return [e.getAttribute('data-count'), e.getAttribute('data-loop'), e.innerText,"
            " e.title];",
            row,
        )
        assert count == str(ITERATIONS)
        assert latest == f"counter-2@{LAST}"
        assert "counter-2 \N{MULTIPLICATION SIGN}600 iterations" in text
        assert "completed 599" in text
        assert "failed 1" in text
        assert f"latest counter-2@{LAST} failed" in title
        assert len(css(browser, "#rp-timeline .tl-member")) == 0  # folded: no iteration's row
        assert css(browser, '#rp-timeline [data-task-id="mail@home-3"]')  # no iteration
        table = '#rp-tasks tr[data-map="counter-2"]'
        wait(browser, lambda d: css(d, table))
        said = " ".join(texts(browser, table))
        assert "\N{MULTIPLICATION SIGN}600 iterations" in said
        assert f"iteration {LAST} failed" in said
        assert len(css(browser, '#rp-tasks tr[data-task-id^="counter-2@"]')) == 0
        click(browser, '#rp-timeline [data-map="counter-2"] button')
        wait(browser, lambda d: len(css(d, "#rp-timeline .tl-member[data-task-id]")) == 500)
        more = "#rp-timeline .tl-member:not([data-task-id]) button"
        assert any("iterations (500 of 600 shown)" in label for label in texts(browser, more))
        click(browser, more)
        wait(browser, lambda d: len(css(d, "#rp-timeline .tl-member[data-task-id]")) == ITERATIONS)
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
