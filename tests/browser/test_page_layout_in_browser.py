"""The dashboard's pages at 1,280 x 900, in a real headless Chromium (issue 91): the 14-task
ETL's graph reads left to right (no edge runs right to left), fits its box by scale with
nothing to scroll, and zooms, pans and fits again; a list of 20 recorded runs is one line a run,
ten of them in the first screen, nothing cut off at the page's edge, a long error shortened
with its whole on hover, each run's origin said; a gate's approval is listed among the run's
decisions (who, what, when), not its failures; a rerun's reused loop and map say so."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from cascade.history import History, Received
from cascade.runtime import Event, task
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard, EngineThread
from .test_dashboard_in_browser import (
    css,
    engine_on,
    no_script_errors,
    open_page,
    open_run,
    started,
    wait,
)
from .test_history_in_browser import _event

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 1280, 900

# The 14-task ETL of issue 91: an extract, a loop, sql, http.get, a check, a cache, a map of
# 200 items, a router to two loads, a report and an audit, a gate, a publish.
ETL14 = {
    "nodes": [
        {"id": "extract-1", "name": "extract", "after": []},
        {"id": "paginate-2", "name": "paginate", "after": ["extract-1"]},
        {"id": "sql-3", "name": "sql", "after": ["extract-1"]},
        {"id": "http.get-4", "name": "http.get", "after": ["paginate-2"]},
        {"id": "check-5", "name": "check", "after": ["sql-3", "http.get-4"]},
        {"id": "cache-6", "name": "cache", "after": ["check-5"]},
        {"id": "transform-7", "name": "transform", "after": ["cache-6"], "map": True},
        {"id": "route-8", "name": "route", "after": ["transform-7"]},
        {"id": "load_a-9", "name": "load_a", "after": ["route-8"], "conditions": ["route-8"]},
        {"id": "load_b-10", "name": "load_b", "after": ["route-8"], "conditions": ["route-8"]},
        {"id": "report-11", "name": "report", "after": ["load_a-9", "load_b-10"]},
        {"id": "audit-12", "name": "audit", "after": ["load_a-9", "load_b-10"]},
        {"id": "approve-13", "name": "approve", "after": ["report-11", "audit-12"]},
        {"id": "publish-14", "name": "publish", "after": ["approve-13"]},
    ]
}
ETL_TASKS = [
    {"task_id": "extract-1", "state": "COMPLETED"},
    {"task_id": "transform-7", "state": "RUNNING"},
    *({"task_id": f"transform-7[{i}]", "state": "COMPLETED"} for i in range(200)),
]


@pytest.fixture
def screen(browser: Any) -> Any:
    """The browser's window at 1,280 x 900 (its viewport a little less: the window's frame)."""
    browser.set_window_size(WIDTH, HEIGHT)
    return browser


# The graph drawn in the Runs place's main, where a run page's stands: a container of the run
# page's class, as wide as the page's main.
DRAW = """
const graph = await import("/static/graph.js");
let box = document.getElementById("graph-test");
if (!box) {
  box = document.createElement("div");
  box.id = "graph-test";
  box.className = "run-graph";
  document.querySelector("main").prepend(box);
}
graph.drawGraph(box, arguments[0], arguments[1], {});
"""

# On the screen: each edge's ends (from its source's right side to its target's left side), every
# box inside the container's box, the container and the page scrolling neither way.
SEEN = """
const box = document.getElementById("graph-test");
const outer = box.getBoundingClientRect();
const edges = [...box.querySelectorAll("path.edge")].map((path) => {
  const ctm = path.getScreenCTM();
  const start = path.getPointAtLength(0).matrixTransform(ctm);
  const end = path.getPointAtLength(path.getTotalLength()).matrixTransform(ctm);
  return {from: path.dataset.from, to: path.dataset.to, start: start.x, end: end.x};
});
const boxes = [...box.querySelectorAll("g.node rect")].map((r) => r.getBoundingClientRect());
return {edges, boxes: boxes.length,
  inside: boxes.every((r) => r.left >= outer.left - 0.5 && r.right <= outer.right + 0.5 &&
    r.top >= outer.top - 0.5 && r.bottom <= outer.bottom + 0.5),
  scrolls: box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight,
  page: document.documentElement.scrollWidth, window: window.innerWidth,
  scale: box.querySelector(".graph-scale").textContent,
  transform: box.querySelector("g.scene").getAttribute("transform"),
  titles: [...box.querySelectorAll("g.node > title")].map((t) => t.textContent)};
"""


def test_the_14_task_etl_reads_left_to_right_and_fits_its_box(
    screen: Any, dashboard: Dashboard
) -> None:
    screen.get(dashboard.url)
    wait(screen, lambda d: d.execute_script("return document.readyState") == "complete")
    screen.execute_script("return (async () => {" + DRAW + "})();", ETL14, ETL_TASKS)
    seen = screen.execute_script(SEEN)
    print(f"14-task ETL at {seen['window']} px: scale {seen['scale']}")
    assert seen["boxes"] == 14
    assert len(seen["edges"]) == 17
    backward = [e for e in seen["edges"] if e["end"] <= e["start"]]
    assert backward == []  # no edge runs right to left: no layer wraps back
    assert seen["inside"], seen  # the whole graph in its box, scaled to fit
    assert not seen["scrolls"], seen
    assert seen["page"] <= seen["window"], seen
    # however small the boxes are drawn, each says its name (and state) on hover
    assert any(t.startswith("transform (transform-7): running, 200 items") for t in seen["titles"])

    # zoomed in (the "+" button), dragged, and fitted again ("fit")
    fitted = seen["transform"]
    screen.execute_script("document.querySelector('#graph-test [data-zoom=\"in\"]').click();")
    zoomed = screen.execute_script(SEEN)
    assert int(zoomed["scale"].rstrip("%")) > int(seen["scale"].rstrip("%"))
    assert not zoomed["scrolls"], zoomed
    assert zoomed["page"] <= zoomed["window"], zoomed
    svg = screen.find_element("css selector", "#graph-test svg.graph")
    ActionChains(screen).move_to_element_with_offset(svg, 0, 0).click_and_hold().move_by_offset(
        -120, 0
    ).release().perform()
    dragged = screen.execute_script(SEEN)
    assert dragged["transform"] != zoomed["transform"]  # panned
    assert dragged["scale"] == zoomed["scale"]
    screen.execute_script("document.querySelector('#graph-test [data-zoom=\"fit\"]').click();")
    assert screen.execute_script(SEEN)["transform"] == fitted
    assert no_script_errors(screen) == []


# -- a list of 20 recorded runs -------------------------------------------------------------------

LONG_ERROR = (
    "ConnectionError: the warehouse at db.internal:5432 refused the connection after 3 retries "
    "(timeout 30 s each); the load of 1,204,311 rows into staging.orders was rolled back"
)
ORIGINS: list[dict[str, Any] | None] = [
    {"workflow": "nightly", "schedule": "nightly", "scheduled_for": "2026-11-27T02:00:00Z"},
    {"workflow": "nightly", "request_id": "r-1", "issued_by": "alice", "reason": "backfill"},
    {"workflow": "nightly", "carried_on_from": "ab" * 16, "lost_engine": "server-a"},
    None,
]


def _runs(path: Path, count: int) -> list[str]:
    """``count`` recorded runs, a minute apart, half of them failed with a long error, their
    origins each of ORIGINS in turn; their ids, the latest first."""
    start = time.time() - 3600
    ids = []
    with History(path, mode="write") as history:
        for n in range(count):
            run_id = f"{n:02d}" * 16
            at = start + 60 * n
            origin = ORIGINS[n % len(ORIGINS)]
            began: dict[str, Any] = {"type": "LifecycleEvent", "event": "ENGINE_STARTED",
                                     "name": "nightly_orders_etl", "tasks": 3}  # fmt: skip
            if origin is not None:
                began["origin"] = origin
            failed = n % 2 == 1
            batch: list[Received] = [_event(at, began, run_id)]
            for index, name in enumerate(["extract", "transform", "load"]):
                body = {"type": "TaskStateEvent", "task_id": f"{name}-{index}", "task_name": name}
                batch.append(_event(at + 1, {**body, "state": "RUNNING"}, run_id))
                ended = "FAILED" if failed and name == "load" else "COMPLETED"
                extra = {"error": LONG_ERROR} if ended == "FAILED" else {}
                batch.append(_event(at + 2, {**body, "state": ended, **extra}, run_id))
            stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED",
                       "status": "Failed" if failed else "Succeeded",
                       **({"error": LONG_ERROR} if failed else {})}  # fmt: skip
            batch.append(_event(at + 3, stopped, run_id))
            history.store(batch)
            ids.append(run_id)
    return ids[::-1]


# Each row of the recorded runs: its top and bottom on the screen, its cells' text and title,
# and whether a cell's content is wider than the cell (cut: an ellipsis, the whole its title).
ROWS = """
const line = parseFloat(getComputedStyle(document.body).lineHeight);
const table = document.getElementById("runs").getBoundingClientRect();
return {line, right: table.right, window: window.innerWidth, height: window.innerHeight,
  page: document.documentElement.scrollWidth,
  heads: [...document.querySelectorAll("#runs thead th")].map((th) => th.textContent),
  rows: [...document.querySelectorAll("#h-runs tr")].map((tr) => {
    const r = tr.getBoundingClientRect();
    return {id: tr.dataset.runId, top: r.top, bottom: r.bottom, height: r.height,
      cells: [...tr.cells].map((td) => ({text: td.textContent, title: td.title,
        cut: td.scrollWidth > td.clientWidth + 1, right: td.getBoundingClientRect().right}))};
  })};
"""


def test_twenty_runs_one_line_each_ten_in_the_first_screen(
    screen: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    ids = _runs(db, 20)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(db))  # fmt: skip
    try:
        screen.get(board.url + "runs")
        wait(screen, lambda d: len(css(d, "#h-runs tr")) == 20)
        seen = screen.execute_script(ROWS)
        assert [row["id"] for row in seen["rows"]] == ids
        heads = seen["heads"]
        assert "origin" in heads
        print(f"20 runs at {seen['window']} x {seen['height']}: rows"
              f" {[round(r['height']) for r in seen['rows']][:3]} px high")  # fmt: skip
        # one line a run
        for row in seen["rows"]:
            assert row["height"] < 2 * seen["line"], row
        # at least ten of them in the first screen
        first_screen = [row for row in seen["rows"] if row["bottom"] <= seen["height"]]
        assert len(first_screen) >= 10, (len(first_screen), seen["rows"][0]["top"])
        # nothing cut off at the page's edge; a cell cut short says the whole on hover
        assert seen["right"] <= seen["window"], seen["right"]
        assert seen["page"] <= seen["window"], seen["page"]
        error = heads.index("error")
        for row in seen["rows"]:
            for cell in row["cells"]:
                assert cell["right"] <= seen["window"] + 0.5, (row["id"], cell)
                if cell["cut"]:
                    assert " ".join(cell["text"].split()) in cell["title"], (row["id"], cell)
        failed = seen["rows"][ids.index("19" * 16)]
        assert failed["cells"][error]["cut"]  # shortened, the whole on hover
        assert failed["cells"][error]["title"] == LONG_ERROR
        # the origin: a schedule's slot, a person's start, a carry-on, none
        origin = heads.index("origin")
        said = {row["id"]: row["cells"][origin] for row in seen["rows"]}
        assert said["00" * 16]["text"] == "schedule nightly 11-27 02:00"
        assert said["01" * 16]["text"] == "started by alice"
        assert "issued_by: alice" in said["01" * 16]["title"]
        assert said["02" * 16]["text"] == "carry-on of " + "ab" * 6 + " (server-a died)"
        assert said["03" * 16]["text"] == "-"
        assert no_script_errors(screen) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


# -- what a run page's rows say ---------------------------------------------------------------

FIRST = "4a" * 16
RERUN = "5b" * 16
GATE_HOLD = {"type": "decision", "kind": "approval", "prompt": "publish the orders?",
             "attempt": 1, "default": "fail"}  # fmt: skip


def _gated_and_rerun(path: Path) -> None:
    """A run whose gate ``approve`` alice approved, whose loop ``page`` ran three iterations and
    whose map ``rows`` two items; and its rerun, which reused the loop, the map and extract."""
    start = time.time() - 600
    with History(path, mode="write") as history:
        for run_id, of, at in ((FIRST, None, start), (RERUN, FIRST, start + 60)):
            origin: dict[str, Any] = {"workflow": "orders"}
            if of is not None:
                origin.update(rerun_of=of, root_run=FIRST, issued_by="bob", request_id="r-2")
            began = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "name": "orders",
                     "origin": origin}  # fmt: skip
            batch = [_event(at, began, run_id)]

            def done(task_id: str, name: str, ts: float, _run: str = run_id,
                     _of: str | None = of) -> list[Received]:  # fmt: skip
                body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name}
                if _of is not None:
                    return [_event(ts, {**body, "state": "COMPLETED", "reused_from": _of}, _run)]
                return [_event(ts, {**body, "state": "RUNNING"}, _run),
                        _event(ts + 0.5, {**body, "state": "COMPLETED"}, _run)]  # fmt: skip

            batch += done("extract-1", "extract", at + 1)
            batch += done("page-2", "page", at + 2)
            for i in range(3):
                batch += done(f"page-2@{i + 1}", "page", at + 2.1 + i / 10)
            batch += done("rows-3", "rows", at + 3)
            for i in range(2):
                batch += done(f"rows-3[{i}]", "rows", at + 3.1 + i / 10)
            gate = {"type": "TaskStateEvent", "task_id": "approve-4", "task_name": "approve"}
            decided = {"decision": "complete", "attempt": 1, "by": "alice",
                       "reason": "numbers look right", "at": at + 8}  # fmt: skip
            batch += [
                _event(at + 4, {**gate, "state": "BLOCKED", "held_by": [GATE_HOLD]}, run_id),
                _event(at + 8, {**gate, "state": "COMPLETED", "decided": decided}, run_id),
            ]
            stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
            batch.append(_event(at + 9, stopped, run_id))
            history.store(batch)


LISTS = """
const items = (id) => [...document.querySelectorAll(`#${id} li`)].map((li) =>
  [li.dataset.taskId || null, li.textContent]);
const reuse = (selector) => document.querySelector(selector)?.cells[5].textContent;
return {failures: items("rp-failures"), decisions: items("rp-decisions"),
  loop: reuse('#rp-tasks tr[data-map="page-2"]'), map: reuse('#rp-tasks tr[data-map="rows-3"]'),
  extract: reuse('#rp-tasks tr[data-task-id="extract-1"]')};
"""


def test_a_gate_approved_is_a_decision_and_a_reused_loop_and_map_say_so(
    screen: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    _gated_and_rerun(db)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(db))  # fmt: skip
    try:
        screen.get(board.url + "runs/" + FIRST)
        wait(screen, lambda d: [*d.execute_script(LISTS)["decisions"], [None]][0][0] == "approve-4")
        said = screen.execute_script(LISTS)
        assert said["failures"] == [[None, "none"]]  # the approval is no failure
        [(task_id, text)] = said["decisions"]
        assert task_id == "approve-4"
        assert text.startswith("approve (gate): approved by alice at ")
        assert text.endswith(" UTC \N{LEFT DOUBLE QUOTATION MARK}numbers look right"
                             "\N{RIGHT DOUBLE QUOTATION MARK}")  # fmt: skip
        screen.get(board.url + "runs/" + RERUN)
        wait(screen, lambda d: d.execute_script(LISTS)["loop"] not in (None, "-"))
        said = screen.execute_script(LISTS)
        assert said["extract"] == "reused from " + FIRST[:12]
        assert said["loop"] == "reused from " + FIRST[:12]
        assert said["map"] == "reused from " + FIRST[:12]
        assert no_script_errors(screen) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


# -- a run page with a held task, at 1,280 x 900 --------------------------------------------

# Where the run page's parts are on the screen, once the run is open: the graph's box must start
# in the first screen, with room to read it (the held task's decision above it).
PLACES = """
const top = (id) => { const e = document.getElementById(id);
  return e && !e.hidden ? Math.round(e.getBoundingClientRect().top) : null; };
const graph = document.getElementById("run-graph").getBoundingClientRect();
return {height: window.innerHeight, scrolled: window.scrollY, graph: graph.top,
  graphBottom: graph.bottom, page: document.documentElement.scrollWidth, width: window.innerWidth,
  parts: Object.fromEntries(["rp-title", "rp-facts", "rp-lineage", "rp-actions", "rp-held",
    "run-graph", "rp-timeline"].map((id) => [id, top(id)]))};
"""


def test_a_run_with_a_held_task_shows_its_graph_in_the_first_screen(
    screen: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """At 1,280 x 900 a live run whose task waits for a decision shows the decision and the
    graph's box in the first screen, at least 240 px of the graph above the fold."""
    suffix = uuid.uuid4().hex[:8]

    @task(name=f"load_{suffix}", on_failure="hold")
    def load(n: int) -> int:
        raise ConnectionError(f"the warehouse refused batch {n}: " + "too many connections " * 4)

    @task(name=f"extract_{suffix}")
    def extract(n: int) -> int:
        return n

    @task(name=f"report_{suffix}")
    def report(*rows: int) -> int:
        return sum(rows)

    open_page(screen, dashboard)
    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    run = engine_thread.submit(engine.run([report(*(load(extract(n)) for n in range(3)))]))
    run_id = wait(screen, lambda d: started(engine_thread.call(lambda: list(events))))
    open_run(screen, run_id)
    wait(screen, lambda d: css(d, "#rp-held-tasks tbody tr") and css(d, "#run-graph g.node"))
    seen = screen.execute_script(PLACES)
    print(f"a run page with a held task at {seen['width']} x {seen['height']}: {seen}")
    assert seen["scrolled"] == 0, seen
    assert seen["parts"]["rp-held"] is not None, seen
    assert seen["parts"]["rp-held"] < seen["graph"], seen  # the decision first, then the graph
    assert seen["graph"] + 240 <= seen["height"], seen  # the graph in the first screen
    assert seen["page"] <= seen["width"], seen  # nothing wider than the window
    assert no_script_errors(screen) == []
    engine_thread.call(lambda: None)
    assert not run.done()
