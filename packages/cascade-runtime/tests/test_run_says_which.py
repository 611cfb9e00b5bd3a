"""A run says which run it is: its id (and its page) logged at its start, on stderr where
nothing is configured to show logs, and in the errors it ends with."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskFailedError, task
from cascade.runtime.testing import EventRecorder


@task
async def one() -> int:
    return 1


@task
def boom() -> None:
    raise RuntimeError("x")


@task
async def forever() -> None:
    await asyncio.Event().wait()


def _run_id(recorder: EventRecorder) -> str:
    return next(e.run_id for e in recorder.events if isinstance(e, RunStarted))


async def test_a_run_logs_its_id_and_page_at_its_start(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(dashboard_url="https://cascade.example/")
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with caplog.at_level(logging.INFO, logger="cascade.runtime"):
        await engine.run(one(), name="nightly")
    run_id = _run_id(recorder)
    said = [r for r in caplog.records if r.name.startswith("cascade.runtime")]
    assert [r.getMessage() for r in said] == [
        f"run {run_id} (nightly) started: https://cascade.example/runs/{run_id}"
    ]
    assert said[0].levelno == logging.INFO


async def test_the_dashboard_address_comes_from_the_environment(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASCADE_DASHBOARD_URL", "http://127.0.0.1:8321/cascade")
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with caplog.at_level(logging.INFO, logger="cascade.runtime"):
        await engine.run(one())
    run_id = _run_id(recorder)
    assert f"run {run_id} (one) started: http://127.0.0.1:8321/cascade/runs/{run_id}" in (
        caplog.messages
    )


async def test_without_a_dashboard_the_log_names_the_run_only(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASCADE_DASHBOARD_URL", raising=False)
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with caplog.at_level(logging.INFO, logger="cascade.runtime"):
        await engine.run(one())
    assert f"run {_run_id(recorder)} (one) started" in caplog.messages


@pytest.mark.parametrize("url", ["cascade.example", "ftp://cascade.example", "http://"])
def test_a_dashboard_address_that_is_not_one_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="dashboard_url"):
        Engine(dashboard_url=url)


def test_a_bad_dashboard_address_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASCADE_DASHBOARD_URL", "cascade.example:8321")
    with pytest.raises(ValueError, match="CASCADE_DASHBOARD_URL"):
        Engine()


async def test_task_failed_error_names_the_run() -> None:
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with pytest.raises(TaskFailedError) as failed:
        await engine.run(boom())
    run_id = _run_id(recorder)
    assert failed.value.run_id == run_id
    assert failed.value.task_name == "boom"
    assert str(failed.value).startswith(f"run {run_id}: task 'boom' (")


async def test_run_cancelled_error_names_the_run() -> None:
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(forever()))
    await recorder.until(lambda: any(isinstance(e, RunStarted) for e in recorder.events))
    run_id = _run_id(recorder)
    engine.cancel(run_id, issued_by="alice")
    with pytest.raises(RunCancelledError) as cancelled:
        await run
    assert cancelled.value.run_id == run_id
    assert run_id in str(cancelled.value)


_SCRIPT = """
import asyncio
import logging
import sys

from cascade.runtime import Engine, RunStarted, task


@task
async def one() -> int:
    return 1


async def main() -> None:
    engine = Engine(dashboard_url="https://cascade.example")
    started = []
    engine.events.subscribe(lambda e: isinstance(e, RunStarted) and started.append(e.run_id))
    if sys.argv[1] == "configured":
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    await engine.run(one())
    await engine.run(one())
    print(" ".join(started))


asyncio.run(main())
"""


def _script(how: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), how],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )


def test_a_script_without_logging_says_each_run_once_on_stderr() -> None:
    done = _script("plain")
    first, second = done.stdout.split()
    assert done.stderr.splitlines() == [
        f"cascade: run {first} (one) started: https://cascade.example/runs/{first}",
        f"cascade: run {second} (one) started: https://cascade.example/runs/{second}",
    ]


def test_a_script_that_configured_logging_is_left_to_it() -> None:
    """Logging configured (here to show warnings only): the line is a log record like any
    other, not also printed."""
    done = _script("configured")
    assert done.stderr == ""
    assert "started" not in done.stdout
