"""serving: an engine serving in a task for the length of a test's ``async with`` block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._engine import Engine
from .._events import RunStarted

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(
    engine: Engine, workflows: Mapping[str, Any], **options: Any
) -> AsyncIterator[list[RunStarted]]:
    """``engine.serve(workflows, **options)`` in a task for the block; cancelled at its end.

    Yields the :class:`~cascade.runtime.RunStarted` of the runs the engine starts, appended as
    they start. At the block's end, serving's own error is raised if it failed, and
    ``AssertionError`` if it stopped before it was cancelled (an engine serves until
    cancelled): a test cannot pass on a server that died under it.

    ```python
    async with serving(engine, {"etl": etl}, schedules={"nightly": nightly}) as started:
        await eventually(lambda: len(started) == 1)
    ```
    """
    started: list[RunStarted] = []
    engine.events.subscribe(lambda e: started.append(e) if isinstance(e, RunStarted) else None)
    served = asyncio.create_task(engine.serve(workflows, **options))
    try:
        yield started
    finally:
        stopped_by_itself = served.done()
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served  # serving's own error, if it failed
    if stopped_by_itself:
        raise AssertionError("engine.serve returned before it was cancelled")
