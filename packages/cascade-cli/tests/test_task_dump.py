"""CASCADE_DEBUG_TASKS: SIGUSR1 writes every asyncio task and what it awaits, to the end."""

from __future__ import annotations

import asyncio
import io
import os
import signal

import pytest

from cascade.cli.plumbing import dump_tasks, install_task_dump

TASKS_DUMPED = "cascade: end of the asyncio tasks"


async def _innermost(event: asyncio.Event) -> None:
    await event.wait()


async def _outer(event: asyncio.Event) -> None:
    await _innermost(event)


async def test_a_dump_shows_what_each_task_awaits_through_every_coroutine() -> None:
    """Each task with its whole await chain and its cancellations, then the closing line."""
    event = asyncio.Event()
    waiting = asyncio.create_task(_outer(event), name="the-waiter")
    await asyncio.sleep(0)
    waiting.cancel()  # asked, not yet delivered: the count says so
    out = io.StringIO()
    dump_tasks(out)
    text = out.getvalue()
    await asyncio.gather(waiting, return_exceptions=True)
    head, _, chain = text.partition("name='the-waiter'")
    assert head.startswith("cascade: 2 asyncio task(s)\n")  # this test's and the waiter
    assert "1 cancellation(s) requested" in chain.splitlines()[0]
    assert chain.index("in _outer") < chain.index("in _innermost") < chain.index("in wait")
    assert text.endswith(TASKS_DUMPED + "\n")


def test_a_dump_outside_a_loop_says_there_are_no_tasks() -> None:
    """No loop running: nothing but the count and the closing line."""
    out = io.StringIO()
    dump_tasks(out)
    assert out.getvalue() == f"cascade: 0 asyncio task(s)\n{TASKS_DUMPED}\n"


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 here")
@pytest.mark.parametrize("value", ["1", ""])
def test_sigusr1_dumps_only_with_the_variable_set(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Set, SIGUSR1 dumps and the command goes on; unset, SIGUSR1 keeps its disposition."""
    monkeypatch.setenv("CASCADE_DEBUG_TASKS", value)
    before = signal.getsignal(signal.SIGUSR1)
    try:
        install_task_dump()
        if not value:
            assert signal.getsignal(signal.SIGUSR1) is before
            return
        os.kill(os.getpid(), signal.SIGUSR1)  # handled in this thread, before the next line
        assert capsys.readouterr().err.endswith(TASKS_DUMPED + "\n")
    finally:
        signal.signal(signal.SIGUSR1, before)
