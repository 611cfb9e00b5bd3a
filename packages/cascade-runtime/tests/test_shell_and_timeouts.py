"""shell: a command as a task; with_timeout / @task(timeout=...): an attempt that takes too long."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from cascade.runtime import (
    Engine,
    Event,
    Param,
    RetryPolicy,
    ShellError,
    TaskFailed,
    TaskFailedError,
    TaskRetrying,
    shell,
    task,
)


def _recorded(engine: Engine) -> list[Event]:
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


async def test_a_commands_stdout_is_the_result_and_its_lines_are_the_tasks_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @task
    def create_build_artifact(version: str) -> str:
        return f"artifact-{version}.zip"

    caplog.set_level(logging.INFO, logger="cascade.runtime.shell")
    version = shell("echo warming up >&2; printf '1.2\\n3\\n'")
    assert await Engine().run(create_build_artifact(version=version)) == "artifact-1.2\n3.zip"
    logged = sorted((r.levelname, r.getMessage()) for r in caplog.records)
    assert logged == [("INFO", "1.2"), ("INFO", "3"), ("WARNING", "warming up")]


async def test_a_command_that_exits_non_zero_fails_with_the_tail_of_its_stderr() -> None:
    engine = Engine()
    failing = shell("echo partial; echo 'no such table' >&2; exit 3")
    with pytest.raises(TaskFailedError) as raised:
        await engine.run(failing)
    error = raised.value.exception
    assert isinstance(error, ShellError)
    assert (error.returncode, error.stderr) == (3, "no such table")
    assert str(error) == (
        "command \"echo partial; echo 'no such table' >&2; exit 3\" exited with 3: no such table"
    )
    assert await engine.run(shell("echo partial; exit 3", check=False)) == "partial"


async def test_a_param_in_a_commands_list_is_one_argument_never_read_by_a_shell(
    tmp_path: Path,
) -> None:
    pwned = tmp_path / "pwned"
    name: Param[str] = Param("name", type=str)
    echoed = shell(["printf", "%s", name])
    given = f"x; touch {pwned} #"
    assert await Engine().run(echoed, params={"name": given}) == given
    assert not pwned.exists()
    assert await Engine().run(echoed, params={"name": "$(id) `id` *"}) == "$(id) `id` *"


async def test_a_commands_list_fails_as_a_string_does_and_says_the_list() -> None:
    failing = shell(["sh", "-c", "echo 'no such table' >&2; exit 3", "name"])
    with pytest.raises(TaskFailedError) as raised:
        await Engine().run(failing)
    error = raised.value.exception
    assert isinstance(error, ShellError)
    assert (error.command, error.returncode, error.stderr) == (
        ["sh", "-c", "echo 'no such table' >&2; exit 3", "name"],
        3,
        "no such table",
    )
    missing = shell(["cascade-no-such-program", "x"])
    with pytest.raises(TaskFailedError, match="FileNotFoundError"):
        await Engine().run(missing)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ([], "shell's list names no program: it is empty"),
        (["head", "-n", 5], "shell's list holds int at 2: each item is one argument, as text"),
    ],
)
async def test_a_commands_list_of_no_program_or_other_than_text_fails_saying_so(
    argv: list[object], said: str
) -> None:
    with pytest.raises(TaskFailedError, match=said):
        await Engine().run(shell(argv))


async def test_a_shell_task_past_its_timeout_kills_its_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    slow = shell.with_timeout(0.5)(f"echo $$ > {pid_file}; exec sleep 30")
    began = time.monotonic()
    with pytest.raises(TaskFailedError, match=r"TimeoutError: the attempt took more than 0\.5 s"):
        await Engine().run(slow)
    assert time.monotonic() - began < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: gone


async def test_an_attempt_past_its_timeout_fails_and_is_retried_as_the_task_says() -> None:
    attempts: list[int] = []

    @task(timeout=0.05)
    async def hangs() -> None:
        attempts.append(1)
        await asyncio.sleep(30)

    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(
        TaskFailedError, match=r"the attempt took more than 0\.05 s \(its timeout\)"
    ):
        await engine.run(hangs.with_retry(2)())
    assert len(attempts) == 2
    assert [type(e).__name__ for e in events if isinstance(e, TaskRetrying | TaskFailed)] == [
        "TaskRetrying",
        "TaskFailed",
    ]


async def test_a_plain_function_past_its_timeout_fails_while_its_thread_runs_on() -> None:
    release = threading.Event()
    finished = threading.Event()

    def blocks() -> str:
        release.wait(30)
        finished.set()
        return "late"

    try:
        with pytest.raises(TaskFailedError, match="TimeoutError: the attempt took more than"):
            await Engine().run(task(blocks).with_timeout(0.05)())
        assert not finished.is_set()
    finally:
        release.set()
    assert await asyncio.to_thread(finished.wait, 30)


async def test_a_tasks_own_timeout_error_is_its_failure_not_a_timeout() -> None:
    @task(timeout=30)
    async def gives_up() -> None:
        raise TimeoutError("the API did not answer")

    with pytest.raises(TaskFailedError, match="TimeoutError: the API did not answer"):
        await Engine().run(gives_up())


@pytest.mark.parametrize("bad", [0, -1, float("inf"), True, "5"])
def test_a_timeout_is_finite_seconds_above_zero(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout must be finite seconds above 0"):
        task(timeout=bad)  # type: ignore[call-overload]


async def test_retry_on_names_the_failures_worth_another_attempt() -> None:
    """A failure retry_on does not name fails the task at its first attempt."""
    attempts: list[str] = []

    @task
    async def flaky(kind: str) -> None:
        attempts.append(kind)
        raise (ConnectionError if kind == "network" else ValueError)(kind)

    engine = Engine()
    for kind, tried in (("network", 3), ("bad input", 1)):
        attempts.clear()
        lazy = flaky(kind).with_retry(3, retry_on=(ConnectionError, TimeoutError))
        with pytest.raises(TaskFailedError):
            await engine.run(lazy)
        assert len(attempts) == tried, kind


async def test_a_lazy_results_retry_and_timeout_are_its_own() -> None:
    """with_retry and with_timeout on a lazy result (as the existing Cascade engine writes them)
    change that call, not the task's other calls."""
    attempts: list[int] = []

    @task
    async def slow(n: int) -> int:
        attempts.append(n)
        await asyncio.sleep(0.2 if len(attempts) == 1 else 0)
        return n

    assert await Engine().run(slow(1).with_timeout(0.05).with_retry(2)) == 1
    assert attempts == [1, 1]
    assert slow.timeout is None
    assert slow.retry.max_attempts == 1


def test_jitter_takes_up_to_its_fraction_off_each_delay() -> None:
    policy = RetryPolicy(max_attempts=4, delay=1.0, backoff=2.0, jitter=0.5)
    delays = [policy.delay_before(3) for _ in range(200)]
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 100  # drawn, not fixed
    with pytest.raises(ValueError, match="jitter must be between 0 and 1"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="retry_on must be exception classes"):
        RetryPolicy(retry_on=(int,))  # type: ignore[arg-type]
