"""Task logs in a real headless Chromium: an open run's lines live under its timeline (a task's
alone once its name is clicked), and a recorded run found in the History by a word it logged,
its lines shown; what a task logged is shown as text, never as markup; a recorded run whose
history lacks some of its log batches says how many on its page."""

from __future__ import annotations

import contextlib
import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.connector_kit.testing import received
from cascade.history import History, Received, decode_message
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic
from cascade.runtime import Event, task
from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard, EngineThread
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
from .test_history_in_browser import _event

pytestmark = pytest.mark.integration

LOGGER = "bt.logs"
BOLD = "<b>bold</b>"


@pytest.fixture
def app_logger() -> Generator[logging.Logger, None, None]:
    """The tasks' logger, letting INFO through (as an app configured so would) for the test."""
    logger = logging.getLogger(LOGGER)
    before = logger.level
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(before)


def messages(driver: Any, panel: str) -> list[str]:
    """The messages the log panel ``panel`` (an element id) shows, in order."""
    return texts(driver, f"#{panel} .log-line .log-message")


def logged(driver: Any) -> list[str]:
    """The live panel's messages, the probes aside."""
    return [m for m in messages(driver, "rp-logs") if not m.startswith("probe ")]


def test_an_open_runs_lines_are_shown_live_as_text_and_a_task_name_filters_them(
    browser: Any,
    dashboard: Dashboard,
    mqtt_broker: BrokerEndpoint,
    engine_thread: EngineThread,
    app_logger: logging.Logger,
) -> None:
    """Two running tasks log INFO lines (one of them markup): the open run's panel shows them
    as text while the tasks still run; the name of one in the timeline narrows the panel to
    its lines, "every task" widens it again; released, the run ends.

    The dashboard reads a run's logs only once a page has it open (a line logged before is
    not kept, as documented): the first task says "probe" until the panel shows it, then
    both log their lines."""
    suffix = uuid.uuid4().hex[:6]
    first, second = f"bt_load_{suffix}", f"bt_save_{suffix}"
    opened, shown_once, release = threading.Event(), threading.Event(), threading.Event()

    @task(name=first)
    def load() -> str:
        opened.wait(WAIT)
        probes = 0
        while not shown_once.wait(0.2) and probes < 5 * WAIT:  # until the panel shows one
            probes += 1
            app_logger.info("probe %d", probes)
        app_logger.info("loading %d rows", 3)
        app_logger.info("row with %s inside", BOLD)
        app_logger.info("loaded")
        release.wait(WAIT)
        return "loaded"

    @task(name=second)
    def save() -> str:
        shown_once.wait(WAIT)
        app_logger.info("saving to %s", "disk")
        release.wait(WAIT)
        return "saved"

    open_page(browser, dashboard)
    recorded: list[Event] = []
    run = engine_thread.submit(engine_on(mqtt_broker, recorded).run([load(), save()]))
    try:
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        open_run(browser, run_id)
        opened.set()
        wait(browser, lambda d: any(m.startswith("probe ") for m in messages(d, "rp-logs")))
        shown_once.set()
        wanted = ["loading 3 rows", f"row with {BOLD} inside", "loaded"]
        every = {*wanted, "saving to disk"}
        wait(browser, lambda d: set(logged(d)) == every)
        shown = logged(browser)
        assert [m for m in shown if m in wanted] == wanted  # in the order logged
        assert css(browser, "#rp-logs b") == []  # the markup is text, not an element
        rows = zip(messages(browser, "rp-logs"), texts(browser, "#rp-logs .log-task"),
                   strict=True)  # fmt: skip
        assert {(m, t) for m, t in rows if not m.startswith("probe ")} == {
            *((m, first) for m in wanted),
            ("saving to disk", second),
        }
        assert set(texts(browser, "#rp-logs .log-level")) == {"INFO"}
        assert set(texts(browser, "#rp-logs .log-logger")) == {f"{LOGGER}:"}
        assert browser.find_element(By.ID, "rp-logs-of").text == "of every task"
        assert not browser.find_element(By.ID, "rp-logs-all").is_displayed()
        assert browser.find_element(By.ID, "rp-logs-earlier").is_displayed()  # no history here
        assert task_state(browser, first) == "RUNNING"
        assert not run.done()

        second_id = attribute(browser, f'#rp-timeline [data-task-id^="{second}"]', "data-task-id")
        assert second_id
        click(browser, f'#rp-timeline [data-task-id="{second_id}"]')
        wait(browser, lambda d: messages(d, "rp-logs") == ["saving to disk"])
        assert browser.find_element(By.ID, "rp-logs-of").text == f"of {second_id}"
        click(browser, "#rp-logs-all:not([hidden])")
        wait(browser, lambda d: set(logged(d)) == every)
        assert browser.find_element(By.ID, "rp-logs-of").text == "of every task"
    finally:
        release.set()
    assert run.result(WAIT) == ["loaded", "saved"]
    wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Succeeded")
    assert set(logged(browser)) == every
    assert css(browser, "#rp-logs b") == []
    assert no_script_errors(browser) == []


@pytest.fixture
def recorder(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> Generator[tuple[subprocess.Popen[str], Path], None, None]:
    """`cascade record --db FILE` on the test's broker, subscribed; stopped with Ctrl-C."""
    db = tmp_path / "history.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "cascade.cli", "record",
         "--host", f"{mqtt_broker.host}:{mqtt_broker.port}", "--db", str(db)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("recording "), (first, process.stderr and process.stderr.read())
        yield process, db
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_the_history_finds_a_run_by_a_word_it_logged_and_shows_its_lines(
    browser: Any,
    mqtt_broker: BrokerEndpoint,
    engine_thread: EngineThread,
    app_logger: logging.Logger,
    recorder: tuple[subprocess.Popen[str], Path],
) -> None:
    """A run recorded by `cascade record` whose task logged a distinctive word, and another
    run that did not: the History's "runs whose logs contain" lists the first alone; opened,
    its lines are in the History's log panel, as text."""
    _, db = recorder
    word = f"zebra{uuid.uuid4().hex[:8]}"
    name = f"bt_hist_{word[-4:]}"

    @task(name=name)
    def chatty() -> str:
        app_logger.info("starting")
        app_logger.info("found a %s in %s", word, BOLD)
        app_logger.warning("done")
        return "ok"

    @task(name="bt_quiet")
    def quiet() -> str:
        app_logger.info("nothing to see")
        return "quiet"

    runs = []
    for tasks in (quiet(), chatty()):
        recorded: list[Event] = []
        engine_thread.submit(engine_on(mqtt_broker, recorded).run(tasks)).result(WAIT)
        runs.append(started(recorded))
    other, run_id = runs
    assert other is not None
    assert run_id is not None
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    try:
        browser.get(board.url)
        wait(browser, lambda d: d.find_element(By.ID, "h-downloads").is_displayed())
        browser.find_element(By.ID, "h-logging").send_keys(word)
        listed = "#h-runs tr[data-run-id]"

        def searched(driver: Any) -> bool:
            """Ask again until the recorder has written the run's lines: it lists the run."""
            found = [attribute(driver, f"{listed}:nth-child({n})", "data-run-id") for n in (1, 2)]
            if found == [run_id, None]:
                return True
            driver.find_element(By.ID, "r-show").click()
            return False

        wait(browser, searched)
        assert browser.find_element(By.ID, "h-no-runs").text == ""
        click(browser, f'#h-runs tr[data-run-id="{run_id}"] button')
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == run_id)
        wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Succeeded")
        wanted = ["starting", f"found a {word} in {BOLD}", "done"]
        wait(browser, lambda d: messages(d, "rp-logs") == wanted)
        assert texts(browser, "#rp-logs .log-task") == [name] * 3
        assert texts(browser, "#rp-logs .log-level") == ["INFO", "INFO", "WARNING"]
        assert css(browser, "#rp-logs b") == []
        assert "no log lines" not in browser.find_element(By.ID, "rp-logs-note").text
        assert not browser.find_element(By.ID, "rp-logs-more").is_displayed()

        # a word no run logged: no run listed
        go_to(browser, "runs")
        browser.find_element(By.ID, "h-logging").clear()
        browser.find_element(By.ID, "h-logging").send_keys(word + "-never")
        click(browser, "#r-show")
        none = "no recorded run matches"
        wait(browser, lambda d: d.find_element(By.ID, "h-no-runs").text == none)
        assert css(browser, listed) == []
        assert no_script_errors(browser) == []
    finally:
        code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


def test_lines_logged_before_the_run_was_opened_come_from_the_history(
    browser: Any,
    mqtt_broker: BrokerEndpoint,
    engine_thread: EngineThread,
    app_logger: logging.Logger,
    recorder: tuple[subprocess.Popen[str], Path],
) -> None:
    """A task logs a line, recorded by `cascade record`, before a page opens its run on a
    dashboard given that history: the panel shows it, then the lines logged after, once each."""
    _, db = recorder
    name = f"bt_early_{uuid.uuid4().hex[:6]}"
    logged_early, release = threading.Event(), threading.Event()

    @task(name=name)
    def early() -> str:
        app_logger.info("before the page")
        logged_early.set()
        release.wait(WAIT)
        app_logger.info("after the page")
        return "ok"

    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    try:
        open_page(browser, board)
        recorded: list[Event] = []
        run = engine_thread.submit(engine_on(mqtt_broker, recorded).run([early()]))
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        assert logged_early.wait(WAIT)
        with History(db, mode="read") as history:  # the recorder has stored the line
            wait(browser, lambda d: history.log_lines(run_id) != [])
        open_run(browser, run_id)
        wait(browser, lambda d: logged(d) == ["before the page"])
        assert not browser.find_element(By.ID, "rp-logs-earlier").is_displayed()
        release.set()
        wait(browser, lambda d: logged(d) == ["before the page", "after the page"])
        assert run.result(WAIT) == ["ok"]
        assert no_script_errors(browser) == []
    finally:
        release.set()
        code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


def _batch(run_id: str, seq: int, ts: float, message: str) -> Received:
    """Log batch ``seq`` of ``run_id``, one line of task ``load-1``, as the recorder got it."""
    stamp = datetime.fromtimestamp(ts, timezone.utc).isoformat()
    line = LogLine(ts=stamp, task_id="load-1", task_name="load", attempt=1, n=seq,
                   level="INFO", logger="etl", message=message)  # fmt: skip
    batch = LogBatch(run_id=run_id, org_id="acme", project_id="shop", source="host-1",
                     seq=seq, ts=stamp, lines=[line])  # fmt: skip
    item = decode_message(received(logs_topic("acme", "shop", run_id), batch), received_at=ts)
    assert item is not None
    return item


def test_a_recorded_runs_page_says_how_many_log_batches_its_history_lacks(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """Two recorded runs: one whose history has its log batches 1 and 4 (2 and 3 lost on the
    way) and one with every batch. The first's page shows its two lines and says 2 batches
    are missing; the second's shows its lines and says nothing of the kind."""
    lossy, whole = uuid.uuid4().hex, uuid.uuid4().hex
    start = time.time() - 600
    began = {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
    ended = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
    path = tmp_path / "history.sqlite3"
    with History(path, mode="write") as history:
        history.store([
            _event(start, began, lossy), _batch(lossy, 1, start + 1, "one"),
            _batch(lossy, 4, start + 4, "four"), _event(start + 5, ended, lossy),
            _event(start, began, whole), _batch(whole, 1, start + 1, "first"),
            _batch(whole, 2, start + 2, "second"), _event(start + 5, ended, whole),
        ])  # fmt: skip
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--db", str(path))  # fmt: skip
    missing = (
        "2 batches of log lines missing, of any task (lost on the way or before a recorder"
        " listened)"
    )
    try:
        browser.get(board.url + "runs/" + lossy)
        wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Succeeded")
        wait(browser, lambda d: messages(d, "rp-logs") == ["one", "four"])
        wait(browser, lambda d: d.find_element(By.ID, "rp-logs-note").text == missing)
        browser.get(board.url + "runs/" + whole)
        wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == whole)
        wait(browser, lambda d: messages(d, "rp-logs") == ["first", "second"])
        assert "missing" not in browser.find_element(By.ID, "rp-logs-note").text
        assert no_script_errors(browser) == []
    finally:
        code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


def test_a_history_made_while_the_run_is_open_is_found_without_a_reload(
    browser: Any,
    mqtt_broker: BrokerEndpoint,
    engine_thread: EngineThread,
    app_logger: logging.Logger,
    tmp_path: Path,
) -> None:
    """`cascade dashboard --db FILE` started as `cascade record --db FILE` made the file and not
    yet its tables: the dashboard serves (it waits for the history); an open run's logs panel
    says there is no history yet and that the page looks again; once the recorder has made it,
    the page finds it by itself (no reload) and says so, and the panel's note goes."""
    db = tmp_path / "history.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as made, made:
        made.execute("PRAGMA journal_mode=WAL")  # the file, its first migration not in yet
    name = f"bt_late_{uuid.uuid4().hex[:6]}"
    logged, release = threading.Event(), threading.Event()

    @task(name=name)
    def waits() -> str:
        app_logger.info("logged before the history")
        logged.set()
        release.wait(WAIT)
        return "ok"

    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN, "--db", str(db))  # fmt: skip
    record: subprocess.Popen[str] | None = None
    try:
        assert any(line.startswith(f"history: none yet at {db}") for line in board.output)
        open_page(browser, board)
        recorded: list[Event] = []
        run = engine_thread.submit(engine_on(mqtt_broker, recorded).run([waits()]))
        run_id = wait(browser, lambda d: started(engine_thread.call(lambda: list(recorded))))
        assert logged.wait(WAIT)
        open_run(browser, run_id)
        earlier = browser.find_element(By.ID, "rp-logs-earlier")
        wait(browser, lambda d: earlier.is_displayed())
        assert "no history yet: this page looks for it again" in earlier.text
        record = subprocess.Popen(
            [sys.executable, "-m", "cascade.cli", "record",
             "--host", f"{mqtt_broker.host}:{mqtt_broker.port}", "--db", str(db)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait(browser, lambda d: not earlier.is_displayed())
        where = browser.find_element(By.ID, "h-where").get_attribute("textContent")
        assert where.startswith(f"history: {db} (found at "), where
        release.set()
        assert run.result(WAIT) == ["ok"]
        assert no_script_errors(browser) == []
    finally:
        release.set()
        if record is not None:
            record.send_signal(signal.SIGINT)
            try:
                record.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                record.kill()
                record.communicate()
        code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)
