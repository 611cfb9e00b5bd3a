"""The run page at a glance, in a real headless Chromium at 1,280 px, with a real engine on a
real mosquitto: a ten-task ETL's graph fits the page's width (its layers wrap, nothing scrolls
sideways, nothing is scaled down); a running map says how long it has run and how many of its
items are done; and a repaint touches only what changed: a row a person selected (its text, its
button focused) is the same row after 20 updates."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cascade.runtime import Event, task
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard, EngineThread
from .test_dashboard_in_browser import (
    WAIT,
    css,
    engine_on,
    no_script_errors,
    open_page,
    started,
    wait,
)
from .test_graph_in_browser import NAMES, RUN_GEOMETRY

pytestmark = pytest.mark.integration

ROWS = 6
BLOCKED_FROM = 3  # items 3, 4 and 5 wait for the test; 0, 1 and 2 complete

# How the graph sits in its container: whether anything scrolls sideways, every box's sides
# against the container's, the drawing's width as drawn against its own (scaled down: smaller).
FIT = """
const box = document.getElementById("run-graph");
const svg = box.querySelector("svg.graph");
const outer = box.getBoundingClientRect();
const boxes = [...box.querySelectorAll("g.node rect")].map((r) => r.getBoundingClientRect());
return {scrolls: box.scrollWidth > box.clientWidth, room: box.clientWidth,
  inside: boxes.every((r) => r.left >= outer.left - 0.5 && r.right <= outer.right + 0.5),
  drawn: svg.getBoundingClientRect().width, width: Number(svg.getAttribute("width")),
  rows: new Set(boxes.map((r) => Math.round(r.top))).size, page: document.documentElement.scrollWidth};
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
return {same: document.querySelector(arguments[0]) === chosen.row, connected: chosen.row.isConnected,
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
        assert abs(fit["drawn"] - fit["width"]) < 1, fit  # wrapped, not scaled down
        assert fit["width"] <= fit["room"], fit
        assert fit["rows"] >= 2, fit  # eleven boxes in one line do not fit: its layers wrap
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
        assert chosen["same"] and chosen["connected"], chosen
        assert chosen["said"].startswith("\N{BLACK RIGHT-POINTING SMALL TRIANGLE} transform"), (
            chosen
        )
        assert chosen["focused"], chosen
        release.set()
        assert finished.result(WAIT) == [2 * row for row in range(ROWS)]
        done = f"return document.querySelector('{map_row}').cells[4].textContent;"
        wait(browser, lambda d: d.execute_script(done) == f"{ROWS} items")
        assert browser.execute_script(CHOSEN, map_row)["same"]
        assert no_script_errors(browser) == []
    finally:
        release.set()
