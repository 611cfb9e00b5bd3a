"""A map in the dashboard's History section, in a real headless Chromium: a run mapping 600
items shows one row for the map with its items counted by state; opened, it loads its items a
page at a time (the first 500, then the rest on demand)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.history import History, Received
from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard
from .test_dashboard_in_browser import click, css, no_script_errors, texts, wait
from .test_history_in_browser import _event

pytestmark = pytest.mark.integration

RUN_ID = "a9a9000000000000000000000000beef"
ITEMS = 600
FAILED = 42


def _task(ts: float, task_id: str, name: str, state: str, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(ts, {**body, **extra}, RUN_ID)


def _record_mapped_run(path: Path) -> None:
    """extract-1 gives 600 rows to the map transform-2; item 42 fails, so the map is skipped."""
    start = time.time() - 3600
    stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}
    batch = [
        _event(start, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, RUN_ID),
        _task(start + 1, "extract-1", "extract", "RUNNING"),
        _task(start + 2, "extract-1", "extract", "COMPLETED", duration_ms=1000),
        _task(start + 2, "transform-2", "transform", "RUNNING", items=ITEMS),
    ]
    for index in range(ITEMS):
        item = f"transform-2[{index}]"
        batch.append(_task(start + 2, item, "transform", "RUNNING"))
        if index == FAILED:
            batch.append(_task(start + 3, item, "transform", "FAILED", error="bad row"))
        else:
            batch.append(_task(start + 3, item, "transform", "COMPLETED"))
    batch += [
        _task(start + 4, "transform-2", "transform", "SKIPPED", error="upstream task failed"),
        _event(start + 5, stopped, RUN_ID),
    ]
    with History(path, mode="write") as history:
        history.store(batch)


def test_a_map_is_one_row_that_opens_to_its_items(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    _record_mapped_run(db)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    try:
        browser.get(board.url)
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{RUN_ID}"]'))
        click(browser, f'#h-runs tr[data-run-id="{RUN_ID}"] button')
        row = '#rp-timeline [data-map="transform-2"]'
        wait(browser, lambda d: css(d, row))
        # read in one step in the page: the timeline may be redrawn between two steps
        count, text = browser.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return [e.getAttribute('data-count'), e.innerText];",
            row,
        )
        assert count == str(ITEMS)
        assert "transform-2 \N{MULTIPLICATION SIGN}600" in text
        assert "completed 599" in text
        assert "failed 1" in text
        assert len(css(browser, "#rp-timeline .tl-member")) == 0  # folded: no item's row
        assert "transform: bad row" in browser.find_element(By.ID, "rp-failures").text
        click(browser, '#rp-timeline [data-map="transform-2"] button')
        wait(browser, lambda d: len(css(d, "#rp-timeline .tl-member[data-task-id]")) == 500)
        more = "#rp-timeline .tl-member:not([data-task-id]) button"
        assert any("500 of 600 shown" in label for label in texts(browser, more))
        click(browser, more)
        wait(browser, lambda d: len(css(d, "#rp-timeline .tl-member[data-task-id]")) == ITEMS)
        assert not css(browser, "#rp-timeline .tl-member:not([data-task-id]) button")
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
