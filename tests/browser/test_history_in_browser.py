"""The dashboard's History section (`cascade dashboard --db`) in a real headless Chromium: past
runs and a run's timeline, a task's durations as a chart, the audit trail with who and why (a
cancel among the constraints); text from the broker shown, never run."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.history import History, Received
from cascade.interfaces import Constraint, constraint_topic, decode_envelope
from cascade.interfaces.commands import decode_cancel_reply, reply_topic
from cascade.interfaces.notes import ClearNote
from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard
from .test_dashboard_in_browser import (
    XSS,
    attribute,
    click,
    css,
    go_to,
    no_script_errors,
    texts,
    wait,
)

pytestmark = pytest.mark.integration

RUN_ID = "0123456789abcdef0123456789abcdef"


def _event(ts: float, body: dict[str, Any], run_id: str = RUN_ID) -> Received:
    envelope = decode_envelope(
        {
            "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
            "run_id": run_id,
            "org_id": "acme",
            "project_id": "shop",
            "source": "host-1",
            "body": body,
        }
    )
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", envelope, ts)


def _task(ts: float, task_id: str, name: str, state: str, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(ts, {**body, **extra})


def _cancel() -> Any:
    return decode_cancel_reply(
        {
            "id": "req-1",
            "run_id": RUN_ID,
            "source": "host-1",
            "cancelled": [{"task_id": "x-1", "task_name": XSS}],
            "cancelled_count": 1,
            "not_started": 1,
            "issued_by": "carol",
            "reason": "wrong input",
        }
    )


@pytest.fixture
def history_db(tmp_path: Path) -> str:
    """A history of :func:`_record_failed_run`, where --db names it."""
    path = str(tmp_path / "history.sqlite3")
    _record_failed_run(path)
    return path


def _record_failed_run(path: str | Path) -> None:
    """An hour-old failed run (a task named and failing with markup), a pause by alice (its
    reason markup), bob's clear and carol's cancel of the run."""
    start = time.time() - 3600
    pause = Constraint.pause("task:load_*", reason=XSS, issued_by="alice", issued_at=start)
    topic = constraint_topic("task:load_*", "pause")
    with History(path, mode="write") as history:
        history.store(
            [
                _event(start, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
                _task(start + 1, "fetch-1", "fetch", "RUNNING"),
                _task(start + 3, "fetch-1", "fetch", "COMPLETED", duration_ms=2000),
                _task(start + 3, "x-1", XSS, "RUNNING"),
                _task(start + 4, "x-1", XSS, "FAILED", duration_ms=1000, error=XSS),
                _event(
                    start + 5,
                    {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"},
                ),
                Received(topic, pause, start + 6),
                Received(topic, None, start + 7),
                Received(topic, ClearNote(issued_by="bob"), start + 8),
                Received(reply_topic("local", "req-1", "host-1"), _cancel(), start + 9),
            ]
        )


def test_the_history_shows_runs_a_timeline_a_chart_and_who_paused_why(
    browser: Any, mqtt_broker: BrokerEndpoint, history_db: str
) -> None:
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", history_db)  # fmt: skip
    try:
        browser.get(board.url)
        wait(browser, lambda d: d.find_element(By.ID, "h-downloads").is_displayed())
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{RUN_ID}"]'))
        click(browser, f'#h-runs tr[data-run-id="{RUN_ID}"] button')
        wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Failed")
        wait(browser, lambda d: XSS in d.find_element(By.ID, "rp-failures").text)
        go_to(browser, "runs")
        click(browser, 'a[href="/tasks"]')
        wait(browser, lambda d: css(d, '#h-tasks tr[data-task-name="fetch"]'))
        click(browser, '#h-tasks tr[data-task-name="fetch"] button')
        wait(browser, lambda d: d.find_element(By.ID, "h-chart").get_attribute("data-points"))
        assert browser.find_element(By.ID, "h-chart").get_attribute("data-points") == "1"
        go_to(browser, "audit")
        wait(browser, lambda d: len(css(d, "#h-audit tbody tr")) == 3)
        cancelled, cleared, paused = texts(browser, "#h-audit tbody tr")  # newest first
        assert f"run:{RUN_ID[:12]}" in cancelled
        assert f"on host-1: cancelled 1 ({XSS}), not started 1" in cancelled
        assert "carol" in cancelled
        assert "bob" in cleared
        assert "alice (claimed)" in paused  # a CLI's --as: nothing vouched for it
        assert XSS in paused
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


def test_without_db_the_history_cascade_record_writes_by_default_is_shown(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """No --db: the history `cascade record` writes by default ($XDG_DATA_HOME/cascade here, as
    platformdirs has it) is read, its path said on start and on the page; a run's timeline has
    its time axis, from +0s at its first state to its end."""
    default = tmp_path / "cascade" / "history.sqlite3"
    _record_failed_run(default)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      data_home=tmp_path)  # fmt: skip
    try:
        assert f"history: {default}\n" in board.output
        browser.get(board.url)
        wait(browser, lambda d: d.find_element(By.ID, "h-downloads").is_displayed())
        assert browser.find_element(By.ID, "h-where").text == f"history: {default}"
        assert not browser.find_element(By.ID, "h-note").is_displayed()
        click(browser, f'#h-runs tr[data-run-id="{RUN_ID}"] button')
        wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Failed")
        # the first state at +1 s, the run's end at +5 s: 4 s, a tick a second
        ticks = texts(browser, "#rp-timeline .tl-axis .tl-tick")
        assert ticks == ["+0s", "+1s", "+2s", "+3s", "+4s"]
        where = browser.execute_script(
            "const axis = document.querySelector('#rp-timeline .tl-axis').getBoundingClientRect();"
            "const ticks = [...document.querySelectorAll('#rp-timeline .tl-tick')]"
            "  .map((t) => t.getBoundingClientRect());"
            "return [ticks[0].left - axis.left, ticks[4].right - axis.right];"
        )
        assert [round(x) for x in where] == [0, 0]  # +0s at the start, +4s at the end
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


def test_without_any_history_the_page_says_how_to_start_recording(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """No --db and nothing recorded yet: the Runs place (and Tasks, Audit) says which command
    keeps runs, on this dashboard's broker; the dashboard makes no file. Once `cascade record`
    has written the history, the page shows it without a reload, saying it found it."""
    default = tmp_path / "cascade" / "history.sqlite3"
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      data_home=tmp_path)  # fmt: skip
    record = f"cascade record --host {mqtt_broker.host}:{mqtt_broker.port}"
    try:
        assert f"history: none yet at {default}: run `{record}` to keep runs\n" in board.output
        browser.get(board.url)
        wait(browser, lambda d: d.find_element(By.ID, "h-note").is_displayed())
        note = (
            f"No history yet at {default}: run `{record}` to keep runs; this page shows it once "
            "it is there (it looks again every few seconds)."
        )
        assert browser.find_element(By.ID, "h-note").text == note
        assert not browser.find_element(By.ID, "h-downloads").is_displayed()
        go_to(browser, "audit")  # the places the history fills say it too
        assert texts(browser, "#place-audit .history-note") == [note]
        go_to(browser, "runs")
        assert not default.parent.exists()
        _record_failed_run(default)
        # no reload: the page looks again by itself, and says it found it
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{RUN_ID}"]'))
        assert not browser.find_element(By.ID, "h-note").is_displayed()
        where = browser.find_element(By.ID, "h-where").text
        assert where.startswith(f"history: {default} (found at "), where
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


BIG_RUN = "fedcba9876543210fedcba9876543210"


def test_a_big_runs_tasks_come_a_page_at_a_time_and_load_more_follows_the_cursor(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """A run of more tasks than a page, each named "step": the timeline shows the first page as
    one row ("step" and their count) under its time axis, and a "load more tasks" button; each
    click adds the next page (its failure too) until none is left; the row opens to a row per
    task."""
    from cascade.dashboard.history import RUN_PAGE

    path = str(tmp_path / "big.sqlite3")
    start = time.time() - 3600
    count = RUN_PAGE + 5
    batch = []
    for index in range(count):
        body = {"type": "TaskStateEvent", "task_id": f"t{index:05d}", "task_name": "step"}
        last = "FAILED" if index == count - 1 else "COMPLETED"
        for offset, state in ((0.0, "RUNNING"), (0.5, last)):
            envelope = decode_envelope(
                {
                    "ts": datetime.fromtimestamp(start + index + offset, timezone.utc).isoformat(),
                    "run_id": BIG_RUN,
                    "org_id": "acme",
                    "project_id": "shop",
                    "source": "host-1",
                    "body": {**body, "state": state, "error": "late" if state == "FAILED" else ""},
                }
            )
            topic = f"cascade/telemetry/acme/shop/{BIG_RUN}/events"
            batch.append(Received(topic, envelope, start + index + offset))
    stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}
    batch.append(_event(start + count, stopped, BIG_RUN))
    with History(path, mode="write") as history:
        history.store(batch)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", path)  # fmt: skip
    group = '#rp-timeline .tl-name[data-group="step"]'
    shown = "#rp-timeline .tl-name[data-task-id]"
    try:
        browser.get(board.url)
        wait(browser, lambda d: css(d, f'#h-runs tr[data-run-id="{BIG_RUN}"]'))
        click(browser, f'#h-runs tr[data-run-id="{BIG_RUN}"] button')
        wait(browser, lambda d: attribute(d, group, "data-count") == str(RUN_PAGE))
        assert texts(browser, group) == [f"\u25b8 step \u00d7{RUN_PAGE}"]
        assert css(browser, shown) == []  # one row until opened
        wait(browser, lambda d: texts(d, "#h-audit tbody tr") == ["none"])  # no constraint set
        # a task a second, the run's end at +505 s: a tick each 2 minutes
        assert texts(browser, "#rp-timeline .tl-tick") == ["+0s", "+2m", "+4m", "+6m", "+8m"]
        more = browser.find_element(By.ID, "rp-tasks-more")
        assert more.is_displayed()
        assert browser.find_element(By.ID, "rp-failures").text == (
            f"none among the {RUN_PAGE} tasks shown"
        )
        click(browser, "#rp-tasks-more")
        wait(browser, lambda d: attribute(d, group, "data-count") == str(count))
        assert not browser.find_element(By.ID, "rp-tasks-more").is_displayed()
        assert "late" in browser.find_element(By.ID, "rp-failures").text
        assert texts(browser, group) == [f"\u25b8 step \u00d7{count} 1 failed"]
        click(browser, f"{group} button")
        wait(browser, lambda d: len(css(d, shown)) == count)
        names = texts(browser, shown)
        assert (names[0], names[-1]) == ("step #1", f"step #{count}")
        last = "const all = document.querySelectorAll(arguments[0]); return all[all.length - 1]"
        assert browser.execute_script(last + ".getAttribute('data-state')", shown) == "FAILED"
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)


def test_a_run_that_ended_by_decisions_says_so_in_the_list_and_its_attempts(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """ops-2 completed the held `transform`: the runs' list, the run's header and its page say
    `1 completed by ops-2` beside Succeeded, and its attempt reads as decided, not completed."""
    from cascade.interfaces.commands import decode_decision_reply

    start = time.time() - 600
    decided = {"decision": "complete", "attempt": 1, "by": "ops-2", "at": start + 5}
    hold = [{"type": "decision", "attempt": 1, "deadline": start + 86_400, "default": "fail"}]
    reply = decode_decision_reply({
        "id": "req-9", "run_id": RUN_ID, "source": "host-1", "decision": "complete",
        "outcome": "applied", "task_id": "transform-1", "task_name": "transform", "attempt": 1,
        "decided": decided, "issued_by": "ops-2",
    })  # fmt: skip
    path = str(tmp_path / "history.sqlite3")
    with History(path, mode="write") as history:
        history.store([
            _event(start, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1}),
            _task(start + 1, "transform-1", "transform", "RUNNING"),
            _task(start + 2.5, "transform-1", "transform", "BLOCKED", error="ValueError: row 7",
                  held_by=hold, duration_ms=1500),
            _task(start + 5, "transform-1", "transform", "COMPLETED", decided=decided),
            Received(reply_topic("acme", "req-9", "host-1"), reply, start + 5),
            _event(start + 6, {"type": "LifecycleEvent", "event": "ENGINE_STOPPED",
                               "status": "Succeeded"}),
        ])  # fmt: skip
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--db", path)
    try:
        browser.get(board.url)
        row = f'#h-runs tr[data-run-id="{RUN_ID}"]'
        wait(browser, lambda d: css(d, row))
        assert "Succeeded · 1 completed by ops-2" in css(browser, row)[0].text
        click(browser, f"{row} button")  # the run's own page, where the decision is said too
        wait(browser, lambda d: d.current_url.endswith("/runs/" + RUN_ID))
        wait(browser, lambda d: d.find_element(By.ID, "rp-decided").text == "1 completed by ops-2")
        assert browser.find_element(By.ID, "rp-status").text == "Succeeded"
        wait(browser, lambda d: "attempt 1: held, completed by decision" in
             d.find_element(By.ID, "rp-failures").text)  # fmt: skip
        assert "attempt 1: completed" not in browser.find_element(By.ID, "rp-failures").text
        # and at its short id
        browser.get(board.url + "runs/" + RUN_ID[:8])
        wait(browser, lambda d: d.find_element(By.ID, "rp-decided").text == "1 completed by ops-2")
        row = '#rp-tasks tr[data-task-id="transform-1"] td:nth-child(7)'
        # read in one step in the page: it redraws its tables (an element found first may go)
        assert [text.strip() for text in texts(browser, row)] == ["completed by ops-2"]
        assert no_script_errors(browser) == []
    finally:
        assert board.stop() == 0, "".join(board.output)
