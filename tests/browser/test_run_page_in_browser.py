"""A run's own page (`/runs/<id or prefix>`) in a real headless Chromium against a real
mosquitto and history: a live run's page, updated live as a task ends; a past run's page from
the history, with its origin and its line; the rerun button that shows the plan and then starts
the rerun of a served workflow's run, and no button (the API refusing) for a reader who may not
steer; a run mapping 2,000 items that opens in under a second with one row for its map; a
finished run's page shows its tasks as the history recorded them while its engine is online
(its summary listing the run) as when it is offline."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Received, Recorder
from cascade.interfaces.serving import (
    PlanStep,
    ServedWorkflow,
    StartRequest,
    WorkflowParam,
    addressed_start_topic,
)
from cascade.runtime import (
    DependencyMissingError,
    Event,
    Router,
    RunStarted,
    TaskCompleted,
    TaskFailed,
    TaskHeld,
    TaskSkipped,
    Trigger,
    task,
)
from cascade.testkit import BrokerEndpoint, ServingEngine

from .conftest import TOKEN, Dashboard, EngineThread
from .test_dashboard_in_browser import (
    attribute,
    click,
    css,
    engine_on,
    no_script_errors,
    open_page,
    open_run,
    started,
    texts,
    wait,
)
from .test_history_in_browser import _event
from .test_start_in_browser import FIRST, SECOND, XSS, _recorded

pytestmark = pytest.mark.integration


def text(driver: Any, element_id: str) -> str:
    said: str = driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        element_id,
    )
    return said


def task_row_state(driver: Any, task_prefix: str) -> str | None:
    return attribute(driver, f'#rp-tasks tr[data-task-id^="{task_prefix}"]', "data-state")


def duration(driver: Any) -> float:
    """The run page's duration fact, in seconds ("0.4s", "12s", "1m05s")."""
    facts: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#rp-facts .fact')].map(f => f.textContent)"
    )
    [shown] = [f.removeprefix("duration") for f in facts if f.startswith("duration")]
    minutes, _, rest = shown.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.rstrip("s"))


def test_a_live_runs_page_at_its_prefix_shows_a_task_end_live(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """Opened at the run's first 8 hex digits (the address becomes its whole id): Running, its
    task running in the table and the timeline; the task let go: completed, Succeeded."""
    name = f"slow_{uuid.uuid4().hex[:8]}"
    go = threading.Event()

    @task(name=name)
    def slow() -> str:
        go.wait(60)
        return "done"

    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    run = engine_thread.submit(engine.run([slow()]))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(events))))
        browser.get(dashboard.url + "runs/" + run_id[:8])
        wait(browser, lambda d: d.current_url.endswith("/runs/" + run_id))
        wait(browser, lambda d: text(d, "rp-status") == "Running")
        assert text(browser, "rp-id") == run_id
        assert "Running" in (attribute(browser, "#rp-status", "class") or "")  # its colour
        assert text(browser, "rp-where") == "live"
        wait(browser, lambda d: task_row_state(d, name) == "RUNNING")
        assert attribute(browser, f'#rp-timeline [data-task-id^="{name}"]', "data-state") == (
            "RUNNING"
        )
        assert css(browser, "#run-page #run-graph")  # the graph's place, for graph.js
        assert browser.find_element(By.ID, "rp-cancel").is_displayed()  # controls are on
        assert not browser.find_element(By.ID, "rp-rerun").is_displayed()  # not served, live
        # a live run's duration grows as the dashboard's clock ticks, not drawn once
        first = duration(browser)
        wait(browser, lambda d: duration(d) > first + 1)
        go.set()
        assert run.result(30) == ["done"]
        wait(browser, lambda d: task_row_state(d, name) == "COMPLETED")
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: not d.find_element(By.ID, "rp-cancel").is_displayed())
        [cells] = browser.execute_script(
            "return [...document.querySelectorAll('#rp-tasks tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent));"
        )
        assert (cells[0], cells[1], cells[2]) == (name, "completed", "1")
        assert texts(browser, "#rp-failures li") == ["none"]
        assert no_script_errors(browser) == []
    finally:
        go.set()


def test_its_held_tasks_are_decided_on_the_runs_page(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """Two tasks held for a decision: listed on the run's page with their buttons (the token's
    holder decides), and in its failures as held; retried with the reason typed, and skipped:
    the run succeeds, each task's state told in the table."""
    suffix = uuid.uuid4().hex[:8]
    fixed = threading.Event()

    @task(name=f"load_{suffix}", on_failure="hold")
    def load() -> int:
        if not fixed.is_set():
            raise ConnectionError("the API is down")
        return 40

    @task(name=f"side_{suffix}", on_failure="hold")
    def side() -> int:
        raise ValueError("side 1 is broken")

    open_page(browser, dashboard)
    events: list[Event] = []
    run = engine_thread.submit(engine_on(mqtt_broker, events).run([load(), side()]))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(events))))
        open_run(browser, run_id)
        load_row = f'#rp-held-tasks tr[data-task-id^="load_{suffix}-"]'
        side_row = f'#rp-held-tasks tr[data-task-id^="side_{suffix}-"]'
        wait(browser, lambda d: css(d, f'{load_row} button[data-decision="retry"]'))
        wait(browser, lambda d: css(d, f'{side_row} button[data-decision="skip"]'))
        assert texts(browser, f"{load_row} .error") == ["ConnectionError: the API is down"]
        assert task_row_state(browser, f"load_{suffix}") == "HELD"
        assert "(held for a decision)" in text(browser, "rp-failures")
        fixed.set()
        browser.find_element(By.ID, "rp-reason").send_keys("API back")
        click(browser, f'{load_row} button[data-decision="retry"]')
        wait(browser, lambda d: text(d, "rp-action-status").startswith("done: retried"))
        wait(browser, lambda d: not css(d, load_row))
        click(browser, f'{side_row} button[data-decision="skip"]')
        wait(browser, lambda d: text(d, "rp-action-status").startswith("done: skipped"))
        with pytest.raises(DependencyMissingError):  # side skipped: it has no result
            run.result(30)
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: task_row_state(d, f"side_{suffix}") == "SKIPPED")
        assert task_row_state(browser, f"load_{suffix}") == "COMPLETED"
        assert not browser.find_element(By.ID, "rp-held").is_displayed()
        assert no_script_errors(browser) == []
    finally:
        fixed.set()


def test_a_past_runs_page_shows_its_origin_and_its_line(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """A rerun recorded an hour ago, opened at a prefix: Succeeded, its workflow, params, who
    started it and why (text, never HTML), the run it reruns and the result it reused from
    it, each a link to that run's page, which lists this one among its reruns."""
    path = str(tmp_path / "history.sqlite3")
    _recorded(path)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--db", path)
    try:
        browser.get(board.url + "runs/" + SECOND[:8])
        wait(browser, lambda d: d.current_url.endswith("/runs/" + SECOND))
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        assert text(browser, "rp-where") == "recorded"
        assert text(browser, "rp-name") == "nightly"
        facts = dict(
            browser.execute_script(
                "return [...document.querySelectorAll('#rp-facts .fact')]"
                ".map(f => [f.children[0].textContent, f.children[1].textContent]);"
            )
        )
        assert facts["workflow"] == "nightly"
        assert facts["parameters"] == "n=5"
        assert facts["started by"] == "alice"
        assert facts["why"] == f"\N{LEFT DOUBLE QUOTATION MARK}{XSS}\N{RIGHT DOUBLE QUOTATION MARK}"
        assert facts["request"] == "req-2"
        assert facts["engine"] == "h1"
        assert f"rerun of {FIRST[:12]} (Failed)" in text(browser, "rp-lineage")
        [reused] = texts(browser, '#rp-tasks tr[data-task-id="extract-1"] td:nth-child(6)')
        assert reused == f"reused from {FIRST[:12]}"
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        click(browser, f'#rp-lineage a[data-run-id="{FIRST}"]')
        wait(browser, lambda d: text(d, "rp-status") == "Failed")
        assert browser.current_url.endswith("/runs/" + FIRST)
        wait(browser, lambda d: f"reruns of it: {SECOND[:12]} (Succeeded)" in text(d, "rp-lineage"))
        browser.back()
        wait(browser, lambda d: text(d, "rp-id") == SECOND)
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


PLAN = [
    PlanStep(task_id="fetch-1", task_name="fetch", action="skip",
             why="not needed: every task that uses it is reused"),
    PlanStep(task_id="extract-2", task_name="extract", action="reuse",
             why="its inputs and code are unchanged", from_run="c3" * 16),
    PlanStep(task_id="transform-3", task_name="transform", action="run", why="it failed"),
]  # fmt: skip


def _post(url: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    asked = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(asked, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_the_rerun_button_shows_the_plan_then_starts_the_rerun(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A served workflow's run that ended: rerun… asks for the plan (nothing started) and shows
    it; "start the rerun" starts it on the process that ran it, with the reason typed; the new
    run's page says whose rerun it is. A read-only dashboard's reader sees no button, and the
    API refuses them."""
    name = f"nightly_{uuid.uuid4().hex[:8]}"
    served = ServedWorkflow(name=name, params=[WorkflowParam(name="day", annotation="str")])
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port,
                              source_id=f"serve-{uuid.uuid4().hex[:6]}")  # fmt: skip
    server = ServingEngine(connector, [served], plan=PLAN)

    async def serve() -> None:
        await connector.connect()
        await server.start()

    async def stop() -> None:
        await server.stop()
        await connector.disconnect()

    engine_thread.submit(serve()).result(20)
    # a dashboard without --token, listening from before the run: it shows it, read-only
    reader = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port))
    try:
        status, answer = _post(f"{dashboard.url}api/workflows/{name}/start",
                               {"params": {"day": "tue"}}, TOKEN)  # fmt: skip
        assert status == 200, answer
        first = answer["run_id"]
        browser.get(dashboard.url + "runs/" + first)
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: d.find_element(By.ID, "rp-rerun").is_displayed())
        browser.find_element(By.ID, "rp-reason").send_keys("the API is back")
        click(browser, "#rp-rerun")
        wait(browser, lambda d: d.find_element(By.ID, "rp-plan").is_displayed())
        steps = browser.execute_script(
            "return [...document.querySelectorAll('#rp-plan-steps tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent));"
        )
        assert steps == [
            ["fetch", "skip", "not needed: every task that uses it is reused", "-"],
            ["extract", "reuse", "its inputs and code are unchanged", "c3" * 6],
            ["transform", "run", "it failed", "-"],
        ]
        assert text(browser, "rp-plan-said") == "1 to run, 1 to reuse, 1 to skip"
        assert [r for r, _ in engine_thread.call(lambda: list(server.started))] == [first]
        [planned] = engine_thread.call(lambda: [r for r in server.requests if r.rerun_of])
        assert (planned.dry_run, planned.rerun_of) == (True, first)
        click(browser, "#rp-rerun-confirm")
        wait(browser, lambda d: text(d, "rp-action-status").startswith("started the rerun on"))
        [_, (second, request)] = engine_thread.call(lambda: list(server.started))
        assert (request.rerun_of, request.dry_run, request.reason) == (
            first, False, "the API is back",
        )  # fmt: skip
        wait(browser, lambda d: f"reruns of it: {second[:12]}" in text(d, "rp-lineage"))
        click(browser, f'#rp-action-status a[data-run-id="{second}"]')
        wait(browser, lambda d: text(d, "rp-id") == second)
        wait(browser, lambda d: f"rerun of {first[:12]}" in text(d, "rp-lineage"))
        assert no_script_errors(browser) == []

        browser.get(reader.url + "runs/" + first)
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: text(d, "rp-facts").startswith("workflow" + name))
        # the workflows were read (the one run's name is listed there) and the page redrawn since
        wait(browser, lambda d: d.execute_script("return window.cascadeRunPage.draws") > 2)
        assert not browser.find_element(By.ID, "rp-rerun").is_displayed()
        status, refused = _post(f"{reader.url}api/runs/{first}/rerun", {"dry_run": True}, None)
        assert status == 401, refused
        assert len(engine_thread.call(lambda: list(server.requests))) == 3
    finally:
        assert reader.stop() == 0, "".join(reader.output)
        engine_thread.submit(stop()).result(20)


MAPPED = "f00d" * 8
ITEMS = 2000
STOPPED = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}


def _record_mapped_run(path: Path) -> None:
    """extract gives 2,000 rows to the map transform-2; item 7 fails."""
    start = time.time() - 3600

    def state(ts: float, task_id: str, name: str, state: str, **extra: Any) -> Received:
        body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
        return _event(ts, {**body, **extra}, MAPPED)

    batch = [
        _event(start, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, MAPPED),
        state(start + 1, "extract-1", "extract", "RUNNING"),
        state(start + 2, "extract-1", "extract", "COMPLETED", duration_ms=1000),
        state(start + 2, "transform-2", "transform", "RUNNING", items=ITEMS),
    ]
    for index in range(ITEMS):
        item = f"transform-2[{index}]"
        batch.append(state(start + 2, item, "transform", "RUNNING"))
        if index == 7:
            batch.append(state(start + 3, item, "transform", "FAILED", error="bad row"))
        else:
            batch.append(state(start + 3, item, "transform", "COMPLETED"))
    batch += [
        state(start + 4, "transform-2", "transform", "SKIPPED", error="upstream task failed"),
        _event(start + 5, STOPPED, MAPPED),
    ]
    with History(path, mode="write") as history:
        history.store(batch)


# Go to the run's page as a link on the page does (its address pushed, the place applied), and
# answer how many milliseconds passed until its map's row was drawn with its status.
OPEN_AND_TIME = """
const [runId, done] = [arguments[0], arguments[arguments.length - 1]];
const t0 = performance.now();
const drawn = () => document.querySelector('#rp-tasks tr[data-map="transform-2"]') &&
  document.getElementById('rp-status').textContent === 'Failed';
const observer = new MutationObserver(() => {
  if (drawn()) { observer.disconnect(); done(performance.now() - t0); }
});
observer.observe(document.getElementById('run-page'), {subtree: true, childList: true,
  characterData: true, attributes: true});
history.pushState(null, '', '/runs/' + runId);
window.dispatchEvent(new PopStateEvent('popstate'));
"""


def test_a_run_of_2000_mapped_items_opens_in_under_a_second_with_one_row_for_its_map(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    _record_mapped_run(db)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(db))  # fmt: skip
    try:
        browser.get(board.url)
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{MAPPED}"]'))  # history read
        browser.set_script_timeout(30)
        took = browser.execute_async_script(OPEN_AND_TIME, MAPPED)
        print(f"the page of a run of {ITEMS} mapped items drawn in {took:.0f} ms")
        assert took < 1000, f"{took:.0f} ms"
        rows = browser.execute_script(
            "return [...document.querySelectorAll('#rp-tasks tbody tr')]"
            ".map(r => r.getAttribute('data-task-id') || r.getAttribute('data-map'));"
        )
        assert rows == ["extract-1", "transform-2"]
        [map_row] = texts(browser, '#rp-tasks tr[data-map="transform-2"]')
        assert "transform \N{MULTIPLICATION SIGN}2,000" in map_row
        assert "completed 1999" in map_row
        assert "failed 1" in map_row
        assert len(css(browser, '#rp-timeline [data-map="transform-2"]')) == 1
        assert len(css(browser, "#rp-timeline .tl-member")) == 0
        assert "transform: bad row" in text(browser, "rp-failures")
        assert (
            browser.execute_script("return document.querySelectorAll('#run-page *').length") < 600
        )
        click(browser, '#rp-tasks [data-map-open="transform-2"]')
        wait(browser, lambda d: len(css(d, "#rp-tasks tr.map-item")) == 50)
        assert "items 1\N{EN DASH}50 of 2,000" in text(browser, "rp-tasks")
        assert attribute(browser, '#rp-tasks tr[data-task-id="transform-2[7]"]', "data-state") == (
            "FAILED"
        )
        click(browser, '#rp-tasks [data-map-page="1"]')
        wait(browser, lambda d: "items 51\N{EN DASH}100 of 2,000" in text(d, "rp-tasks"))
        assert len(css(browser, "#rp-tasks tr.map-item")) == 50
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


def _rows(driver: Any) -> dict[str, str]:
    """The run page's tasks table: each row's task (or map) name -> its state cell."""
    rows: list[list[str]] = driver.execute_script(
        "return [...document.querySelectorAll('#rp-tasks tbody tr[data-task-id], "
        "#rp-tasks tbody tr[data-map]')].map(r => [r.getAttribute('data-task-id') || "
        "r.getAttribute('data-map'), r.cells[1].textContent]);"
    )
    return {task_id.rpartition("-")[0]: state for task_id, state in rows}


def test_a_finished_runs_page_shows_its_tasks_while_its_engine_is_online(
    browser: Any, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread, tmp_path: Path
) -> None:
    """A run that ended while a recorder listened, opened on a dashboard started after it (as
    one restarted, or one whose live view let the run go) while its engine is still online:
    the engine's summary lists the run, its tasks only the history has, and the page shows
    them as the history recorded them (a map one row, its items counted), as it does once
    the engine is offline."""
    suffix = uuid.uuid4().hex[:8]

    @task(name=f"extract_{suffix}")
    def extract() -> list[int]:
        return [1, 2, 3]

    @task(name=f"double_{suffix}")
    def double(row: int) -> int:
        return row * 2

    @task(name=f"total_{suffix}")
    def total(rows: list[int]) -> int:
        return sum(rows)

    path = tmp_path / "history.sqlite3"
    history = History(f"sqlite:///{path}", mode="write")
    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    connector = engine.connector
    assert connector is not None
    listening = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)

    async def run_recorded() -> str:
        await listening.connect()
        await connector.connect()  # online before the run, and after it
        async with Recorder(listening, history) as recorder:
            assert await engine.run(total(double.map(row=extract()))) == 12
            run_id = started(events)
            assert run_id is not None
            while True:  # no event says when the recorder wrote the run's end
                await recorder.flush(timeout=5)
                recorded = await asyncio.to_thread(history.run, run_id)
                if recorded is not None and recorded.run.status == "Succeeded":
                    return run_id
                await asyncio.sleep(0.05)

    async def stop() -> None:
        await connector.disconnect()
        await listening.disconnect()

    run_id = engine_thread.submit(run_recorded()).result(30)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(path))  # fmt: skip
    try:
        # the dashboard holds the run as its online engine's summary lists it, no task of it
        def listed() -> dict[str, Any] | None:
            with urllib.request.urlopen(f"{board.url}api/state?run={run_id}", timeout=10) as said:
                run: dict[str, Any] | None = json.loads(said.read())["run"]
            return run

        assert wait(browser, lambda d: listed())["from_summary"] is True
        browser.get(board.url + "runs/" + run_id)
        wait(browser, lambda d: d.execute_script("return window.cascadeEvents.snapshot") > 0)
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        expected = {f"extract_{suffix}": "completed", f"double_{suffix}": "completed 3",
                    f"total_{suffix}": "completed"}  # fmt: skip
        wait(browser, lambda d: _rows(d) == expected)
        [map_row] = texts(browser, f'#rp-tasks tr[data-map^="double_{suffix}-"]')
        assert "3 items" in map_row
        assert texts(browser, "#rp-failures li") == ["none"]
        assert text(browser, "rp-where") == "recorded"
        assert text(browser, "rp-tasks-unknown") == ""  # its tasks are known: nothing to say
        engine_thread.submit(connector.disconnect()).result(20)  # its engine offline
        browser.refresh()
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: _rows(d) == expected)
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
        engine_thread.submit(stop()).result(20)


def test_a_routed_run_with_a_decided_hold_shows_each_tasks_state_as_its_engine_said(
    browser: Any, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread, tmp_path: Path
) -> None:
    """A run of two routers (one with two consumers, one nested in another's route) and a task
    held on failure, then skipped through ``engine.decide``: the run page's task table says of
    each task what the engine's events said (unchosen branches skipped), while its engine is
    online, and, from the history, once it went offline."""
    suffix = uuid.uuid4().hex[:8]

    def named(what: str, function: Any, **options: Any) -> Any:
        return task(name=f"{what}_{suffix}", **options)(function)

    def value(what: str, result: Any) -> Any:
        return named(what, lambda: result)()

    def broken() -> int:
        raise ValueError("held on purpose")

    def router(selector: Any, **routes: Any) -> Router[Any]:
        return Router(selector, routes=routes)

    picked = router(value("pick", "a"), a=value("route_a", 1), b=value("route_b", 2))
    deeper = router(value("inner", "b"), a=value("in_a", 3), b=value("in_b", 4))
    nested = router(value("outer", "x"), x=deeper, y=value("out_y", 5))
    target = [named("take", lambda x: x)(picked), named("also", lambda x: x)(picked),
              named("deep", lambda x: x)(nested),
              named("after", lambda x: x)(named("held", broken, on_failure="hold")())]  # fmt: skip
    path = tmp_path / "history.sqlite3"
    history = History(f"sqlite:///{path}", mode="write")
    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    connector = engine.connector
    assert connector is not None
    listening = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    recorder = Recorder(listening, history)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(path))  # fmt: skip

    async def start() -> None:
        await listening.connect()
        await recorder.__aenter__()
        await connector.connect()

    stopped: list[bool] = []

    async def stop() -> None:
        if not stopped:
            stopped.append(True)
            await connector.disconnect()
            await recorder.__aexit__(None, None, None)
            await listening.disconnect()

    def engine_said() -> dict[str, str]:
        """Each task's final state, by its name, as the engine's events say it."""
        finals = (TaskCompleted, TaskFailed, TaskSkipped)
        return {e.task_id.rpartition("-")[0]: type(e).__name__.removeprefix("Task").lower()
                for e in list(events) if isinstance(e, finals)}  # fmt: skip

    try:
        engine_thread.submit(start()).result(20)
        running = engine_thread.submit(engine.run(target))
        run_id = wait(browser, lambda d: started(events))
        browser.get(board.url + "runs/" + run_id)
        held = wait(browser, lambda d: next((e for e in list(events)
                                              if isinstance(e, TaskHeld)), None))  # fmt: skip
        reply = engine_thread.call(lambda: engine.decide(run_id, held.task_id, "skip"))
        assert reply is not None
        assert reply.applied
        with pytest.raises(DependencyMissingError):  # "after" skipped: it has no result
            running.result(20)
        said = engine_said()
        assert said[f"route_b_{suffix}"] == said[f"in_a_{suffix}"] == "skipped"
        assert said[f"held_{suffix}"] == "skipped"
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: _rows(d) == said)
        engine_thread.submit(stop()).result(20)  # its engine offline, the history recorded
        assert wait(browser, lambda d: history.run(run_id) is not None)
        browser.refresh()
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: _rows(d) == said)
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
        engine_thread.submit(stop()).result(20)


def test_a_runs_page_says_why_it_shows_no_tasks_when_only_its_engines_summary_lists_it(
    browser: Any, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A run that ended before a dashboard without history started, its engine still online:
    the dashboard holds it only as the engine's summary lists it, no task of it. Its page shows
    no task row, and says why (no history, only the summary), instead of an empty table that
    says nothing."""
    suffix = uuid.uuid4().hex[:8]
    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    connector = engine.connector
    assert connector is not None

    async def run() -> str:
        await connector.connect()
        assert await engine.run(task(name=f"only_{suffix}")(lambda: 1)()) == 1
        run_id = started(events)
        assert run_id is not None
        return run_id

    run_id = engine_thread.submit(run()).result(30)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port))
    try:
        browser.get(board.url + "runs/" + run_id)
        wait(browser, lambda d: text(d, "rp-status") == "Succeeded")
        wait(browser, lambda d: "tasks are not known here" in text(d, "rp-tasks-unknown"))
        said = text(browser, "rp-tasks-unknown")
        assert browser.find_element(By.ID, "rp-tasks-unknown").is_displayed()
        assert "no history" in said
        assert "summary" in said
        assert _rows(browser) == {}
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
        engine_thread.submit(connector.disconnect()).result(20)


def test_a_triggered_runs_page_names_its_trigger_and_links_the_run_it_followed(
    browser: Any, dashboard: Dashboard, mqtt_broker: BrokerEndpoint, engine_thread: EngineThread
) -> None:
    """A report a trigger started after an etl run (docs/triggers.md): its page says the
    trigger and its event, and links the etl run it followed."""
    suffix = uuid.uuid4().hex[:8]

    @task(name=f"load_{suffix}")
    def load() -> int:
        return 1

    def etl() -> Any:
        return load()

    def report(source_run: str = "") -> Any:
        return load()

    events: list[Event] = []
    engine = engine_on(mqtt_broker, events)
    trigger = Trigger(after="etl", workflow="report", params=lambda e: {"source_run": e.run_id})

    async def serve() -> asyncio.Task[None]:
        workflows = {"etl": etl, "report": report}
        return asyncio.create_task(engine.serve(workflows, triggers={"report_after_etl": trigger}))

    async def stop(serving: asyncio.Task[None]) -> None:  # ended in its loop, before it closes
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    serving = engine_thread.submit(serve()).result(20)
    source = engine.connector.source_id  # type: ignore[union-attr]
    topic = addressed_start_topic("local", "default", "etl", source, "cascade")
    request = StartRequest(id=f"etl-{suffix}", workflow="etl")

    def triggered() -> RunStarted | None:
        runs = engine_thread.call(lambda: list(events))
        return next(
            (e for e in runs if isinstance(e, RunStarted) and e.origin and e.origin.trigger), None
        )

    try:
        # the same request again until the server takes it (it answers a copy once)
        def asked(driver: Any) -> RunStarted | None:
            engine_thread.submit(engine.connector.publish(topic, request, qos=1)).result(10)  # type: ignore[union-attr]
            return triggered()

        report_run = wait(browser, asked)
        assert report_run.origin is not None
        etl_run = report_run.origin.followed_run
        browser.get(dashboard.url + "runs/" + report_run.run_id)
        wait(browser, lambda d: text(d, "rp-id") == report_run.run_id)
        trigger_fact = "[...document.querySelectorAll('#rp-facts .fact')].map(f => f.textContent)"
        wait(browser, lambda d: any(f.startswith("trigger") for f in d.execute_script(
            "return " + trigger_fact)))  # fmt: skip
        [said] = [
            f for f in browser.execute_script("return " + trigger_fact) if f.startswith("trigger")
        ]
        assert f"report_after_etl: run {etl_run} of etl Succeeded on {source}" in said
        click(browser, f'#rp-facts a[data-run-id="{etl_run}"]')
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == etl_run)
    finally:
        engine_thread.submit(stop(serving)).result(20)
