"""The live view's loop: wait until done (or a duration), redraw a few times a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from rich.console import RenderableType
from rich.live import Live

from cascade.interfaces.connector_kit import bounded

__all__ = ["refresh", "wait_until"]


async def wait_until(done: asyncio.Event, duration: float | None) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        async with bounded(duration):
            await done.wait()


async def refresh(live: Live, frame: Callable[[], RenderableType]) -> None:
    while True:
        live.update(frame())
        await asyncio.sleep(0.25)
