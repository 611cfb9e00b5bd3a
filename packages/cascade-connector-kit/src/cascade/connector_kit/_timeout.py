"""Deadlines for awaits that never swallow a cancellation."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

if sys.version_info >= (3, 11):
    from asyncio import timeout as bounded
else:  # pragma: no cover - exercised by the 3.10 CI job
    from async_timeout import timeout as bounded

__all__ = ["bounded", "cancel_all", "event_set"]


async def event_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Whether ``event`` is set within ``timeout`` seconds (``None``: however long it takes).

    The wait runs as a task of its own, as in ``asyncio.wait_for(event.wait(), timeout)``
    (so a loop that waits on an event takes the same turns), but a cancellation of the
    caller always reaches it: before Python 3.12, ``wait_for`` drops one that arrives just
    as the event is set (a Ctrl-C lost).
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
        return waiter.done() and not waiter.cancelled()
    finally:
        waiter.cancel()


async def cancel_all(tasks: Iterable[asyncio.Task[Any]], again_after: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until every one has ended (their errors taken, not raised).

    A task still running ``again_after`` seconds later is cancelled again: before Python 3.12
    an ``asyncio.wait_for`` it awaits (its own or a library's) drops a cancellation that
    arrives just as its wait ends, and a task that loops (a clock, a poller) would run on.
    """
    tasks = list(tasks)
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=again_after)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # taken: a stopped task's error is not logged as never retrieved
