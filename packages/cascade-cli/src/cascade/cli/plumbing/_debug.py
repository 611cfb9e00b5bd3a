"""A debug aid for a command that does not end: ``CASCADE_DEBUG_TASKS=1`` and SIGUSR1.

faulthandler (``PYTHONFAULTHANDLER=1``, then SIGABRT) shows the threads, and of a hung
command only its event loop waiting in ``select``; what the coroutines await is in the
asyncio tasks. With ``CASCADE_DEBUG_TASKS`` set, SIGUSR1 writes each task's stack on stderr
(with how many cancellations it was asked for, :meth:`asyncio.Task.cancelling`) and goes on.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import TextIO

__all__ = ["DEBUG_TASKS_VARIABLE", "TASKS_DUMPED", "dump_tasks", "install_task_dump"]

DEBUG_TASKS_VARIABLE = "CASCADE_DEBUG_TASKS"
TASKS_DUMPED = "cascade: end of the asyncio tasks"
"""The last line of a dump: a test waits for it before it kills the command."""


def dump_tasks(file: TextIO | None = None) -> None:
    """Write the running loop's tasks to ``file`` (stderr), each with the whole chain of what it
    awaits (``Task.print_stack`` shows a coroutine's outermost frame only), then TASKS_DUMPED."""
    import asyncio  # the dump's alone: a command that never dumps does not import it here
    import traceback

    out = file if file is not None else sys.stderr
    try:
        tasks = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:  # no loop running: faulthandler's thread stacks say where it is
        tasks = set()
    print(f"cascade: {len(tasks)} asyncio task(s)", file=out)
    for task in tasks:
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+
        asked = f", {cancelling()} cancellation(s) requested" if cancelling is not None else ""
        print(f"{task!r}{asked}:", file=out)
        frames = traceback.StackSummary.extract(_awaiting(task.get_coro()))
        print("".join(frames.format()), end="", file=out)
    print(TASKS_DUMPED, file=out, flush=True)


def _awaiting(coro: object) -> Iterator[tuple[FrameType, int]]:
    """The frames of ``coro`` and of the coroutines it awaits, outermost first."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:  # a future (the task's wait_for), or a coroutine that has ended
            return
        yield frame, frame.f_lineno
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    dump_tasks()


def install_task_dump() -> None:
    """With ``CASCADE_DEBUG_TASKS`` set, SIGUSR1 calls :func:`dump_tasks` (where there is one)."""
    usr1 = getattr(signal, "SIGUSR1", None)
    if usr1 is not None and os.environ.get(DEBUG_TASKS_VARIABLE):
        signal.signal(usr1, _on_signal)
