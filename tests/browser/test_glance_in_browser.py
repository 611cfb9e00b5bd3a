"""The run page at a glance, in a real headless Chromium at 1,280 px, with a real engine on a
real mosquitto: a ten-task ETL's graph fits the page's width (its layers left to right, never
wrapped back, the drawing scaled to its box: nothing scrolls sideways); a running map says how
long it has run and how many of its items are done; and a repaint touches only what changed: a
row a person selected (its text, its button focused) is the same row after 20 updates."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.history import History, Received
from cascade.runtime import Event, task
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard, EngineThread
from .test_dashboard_in_browser import (
    WAIT,
    click,
    css,
    engine_on,
    no_script_errors,
    open_page,
    started,
    wait,
)
from .test_graph_in_browser import NAMES, RUN_GEOMETRY
from .test_history_in_browser import _event

pytestmark = pytest.mark.integration

ROWS = 6
BLOCKED_FROM = 3  # items 3, 4 and 5 wait for the test; 0, 1 and 2 complete

# How the graph sits in its container: whether anything scrolls sideways, every box's sides
# against the container's, the drawing's width, and whether every edge ends right of its start.
FIT = """
const box = document.getElementById("run-graph");
const svg = box.querySelector("svg.graph");
const outer = box.getBoundingClientRect();
const boxes = [...box.querySelectorAll("g.node rect")].map((r) => r.getBoundingClientRect());
return {scrolls: box.scrollWidth > box.clientWidth, room: box.clientWidth,
  inside: boxes.every((r) => r.left >= outer.left - 0.5 && r.right <= outer.right + 0.5),
  drawn: svg.getBoundingClientRect().width,
  forward: [...box.querySelectorAll("path.edge")].every((path) => {
    const ctm = path.getScreenCTM();
    return path.getPointAtLength(path.getTotalLength()).matrixTransform(ctm).x >
      path.getPointAtLength(0).matrixTransform(ctm).x;
  }),
  page: document.documentElement.scrollWidth};
"""

# A row of the tasks table chosen as a person would: its name's text selected, its button (or
# the row's first cell) kept; later, whether that same row, selection and focus are still there.
CHOOSE = """
const row = document.querySelector(arguments[0]);
const cell = row.cells[0];
const range = document.createRange();
range.selectNodeContents(cell);
const selection = window.getSelection();
selection.removeAllRanges();
selection.addRange(range);
window.chosen = {row, said: selection.toString(), repaints: window.cascadeRepaints};
const button = row.querySelector("button");
if (button) button.focus();
window.chosen.button = button;
return window.chosen.said;
"""
CHOSEN = """
const chosen = window.chosen;
return {same: document.querySelector(arguments[0]) === chosen.row,
  connected: chosen.row.isConnected,
  said: window.getSelection().toString(), repaints: window.cascadeRepaints - chosen.repaints,
  focused: chosen.button === null || document.activeElement === chosen.button};
"""


def _passed_on(value: object) -> object:
    return value


def test_a_ten_task_etl_fits_1280_px_its_map_runs_and_a_chosen_row_survives_updates(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    release = threading.Event()
    names = ["extract", "clean", "dedupe", "enrich", "validate", "load", "index", "report",
             "notify"]  # fmt: skip
    steps = {name: task(name=name)(_passed_on) for name in names}

    @task(name="transform")
    def transform(row: int) -> int:
        if row >= BLOCKED_FROM:
            release.wait(WAIT)
        return row * 2

    @task(name="rows")
    def rows_of(value: object) -> list[int]:
        return list(range(ROWS))

    cleaned = steps["enrich"](steps["dedupe"](steps["clean"](steps["extract"](1))))
    mapped = transform.map(row=rows_of(cleaned))
    loaded = steps["load"](steps["validate"](mapped))
    target = steps["notify"](steps["report"](steps["index"](loaded)))
    recorded: list[Event] = []
    open_page(browser, dashboard, token=None)
    assert browser.execute_script("return window.innerWidth") <= 1280
    finished = engine_thread.submit(engine_on(mqtt_broker, recorded).run(target))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        browser.get(dashboard.url + "runs/" + run_id)
        wait(browser, lambda d: len(css(d, "#run-graph g.node")) == 11)
        fit = browser.execute_script(FIT)
        print(f"ten-task ETL at 1,280 px: {fit}")
        assert not fit["scrolls"], fit
        assert fit["inside"], fit
        assert fit["drawn"] <= fit["room"], fit
        assert fit["forward"], fit  # no layer wrapped back: every edge runs left to right
        assert fit["page"] <= 1280, fit
        named = dict(browser.execute_script(NAMES))
        for edge in browser.execute_script(RUN_GEOMETRY):
            assert edge["leaves"], (named[edge["from"]], named[edge["to"]], edge)
            assert edge["arrives"], (named[edge["from"]], named[edge["to"]], edge)

        # the map, running: three items done of six, and its time so far (never "0 ms")
        map_row = "#rp-tasks tr[data-map]"
        cells = "return [...document.querySelector(arguments[0]).cells].map((c) => c.textContent);"
        wait(browser, lambda d: css(d, map_row))
        wait(
            browser,
            lambda d: f"{BLOCKED_FROM} of {ROWS} items done" in d.execute_script(cells, map_row),
        )
        said = browser.execute_script(cells, map_row)
        assert said[3].endswith("s so far"), said
        assert "0 ms" not in said, said

        # a row chosen (its text selected, its map's button focused) across 20 updates
        assert browser.execute_script(CHOOSE, map_row).startswith(
            "\N{BLACK RIGHT-POINTING SMALL TRIANGLE} transform"
        )
        wait(browser, lambda d: d.execute_script(CHOSEN, map_row)["repaints"] >= 20)
        chosen = browser.execute_script(CHOSEN, map_row)
        assert chosen["same"], chosen
        assert chosen["connected"], chosen
        assert chosen["said"].startswith("\N{BLACK RIGHT-POINTING SMALL TRIANGLE} transform"), (
            chosen
        )
        assert chosen["focused"], chosen
        release.set()
        done = f"return document.querySelector('{map_row}').cells[4].textContent;"
        wait(browser, lambda d: d.execute_script(done) == f"{ROWS} items")
        assert browser.execute_script(CHOSEN, map_row)["same"]  # its cells changed, not it
        assert finished.result(WAIT) == [2 * row for row in range(ROWS)]
        assert no_script_errors(browser) == []
    finally:
        release.set()


def test_a_chosen_row_of_the_runs_list_survives_20_updates(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """The Runs list of a live run (its duration ticking): the run's row with its text selected
    and its id's button focused is the same row, selection and focus after 20 repaints."""
    release = threading.Event()

    @task(name="slow")
    def slow() -> int:
        release.wait(WAIT)
        return 1

    recorded: list[Event] = []
    open_page(browser, dashboard, token=None)
    finished = engine_thread.submit(engine_on(mqtt_broker, recorded).run(slow()))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        row = f'#r-live tr[data-run-id="{run_id}"]'
        wait(browser, lambda d: css(d, row))
        assert browser.execute_script(CHOOSE, row) == run_id[:12]
        wait(browser, lambda d: d.execute_script(CHOSEN, row)["repaints"] >= 20)
        chosen = browser.execute_script(CHOSEN, row)
        assert chosen["same"], chosen
        assert chosen["said"] == run_id[:12], chosen
        assert chosen["focused"], chosen
        release.set()
        assert finished.result(WAIT) == 1
        assert no_script_errors(browser) == []
    finally:
        release.set()


FIRST = "1f" * 16
RERUN = "2e" * 16
AGAIN = "3d" * 16


def _record_line(path: Path) -> None:
    """A run that failed, its rerun that failed again reusing extract, and the rerun's rerun
    that succeeded reusing extract and clean."""
    start = time.time() - 3600

    def run(run_id: str, at: float, of: str | None, status: str, reused: int) -> list[Received]:
        origin = {"workflow": "nightly"} if of is None else {
            "workflow": "nightly", "rerun_of": of, "root_run": FIRST}  # fmt: skip
        began = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "name": "nightly",
                 "origin": origin}  # fmt: skip
        batch = [_event(at, began, run_id)]
        for index, name in enumerate(["extract", "clean", "load"]):
            body = {"type": "TaskStateEvent", "task_id": f"{name}-{index}", "task_name": name}
            if index < reused:
                batch.append(
                    _event(at + 1, {**body, "state": "COMPLETED", "reused_from": of}, run_id)
                )
            else:
                batch.append(_event(at + 1, {**body, "state": "RUNNING"}, run_id))
                ended = "FAILED" if status == "Failed" and name == "load" else "COMPLETED"
                batch.append(_event(at + 2, {**body, "state": ended}, run_id))
        stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": status}
        return [*batch, _event(at + 3, stopped, run_id)]

    with History(path, mode="write") as history:
        history.store(run(FIRST, start, None, "Failed", 0))
        history.store(run(RERUN, start + 60, FIRST, "Failed", 1))
        history.store(run(AGAIN, start + 120, RERUN, "Succeeded", 2))


LINE = """
const row = document.querySelector(arguments[0]);
const work = row && row.querySelector(".line-of-work");
return work && {text: work.textContent,
  runs: [...work.querySelectorAll("[data-line-run]")].map((e) => e.getAttribute("data-line-run"))};
"""


def test_a_run_and_its_reruns_are_one_line_of_work_in_runs_and_on_the_run_page(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    _record_line(db)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(db))  # fmt: skip
    try:
        browser.get(board.url + "runs")
        row = f'#h-runs tr[data-run-id="{AGAIN}"]'
        wait(browser, lambda d: d.execute_script(LINE, row))
        said = browser.execute_script(LINE, row)
        assert said["runs"] == [FIRST, RERUN, AGAIN]
        assert said["text"].startswith("line of work: latest Succeeded")
        assert f"first {FIRST[:12]} Failed" in said["text"]
        assert f"rerun {RERUN[:12]} Failed, 1 reused" in said["text"]
        assert f"rerun {AGAIN[:12]} Succeeded, 2 reused" in said["text"]
        # one row for the line: the earlier runs are in it, not rows of their own
        listed = "return [...document.querySelectorAll('#h-runs tr')].map((r) => r.dataset.runId);"
        assert browser.execute_script(listed) == [AGAIN]
        # the first run's page says the same line, each run a link to its page
        browser.get(board.url + "runs/" + FIRST)
        wait(browser, lambda d: d.execute_script(LINE, "#rp-lineage"))
        on_page = browser.execute_script(LINE, "#rp-lineage")
        assert on_page["runs"] == [FIRST, RERUN, AGAIN]
        assert on_page["text"] == said["text"]
        click(browser, f'#rp-lineage [data-line-run="{AGAIN}"] a')
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == AGAIN)
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
