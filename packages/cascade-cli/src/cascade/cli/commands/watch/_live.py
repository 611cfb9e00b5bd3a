"""The live view's loop: wait until done (or a duration), redraw a few times a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from rich.console import RenderableType
from rich.live import Live

from cascade.connector_kit import bounded
from cascade.reader import SHOWN, ReaderModel, inert, silence_line

__all__ = ["refresh", "wait_until", "warn_silent"]


async def wait_until(done: asyncio.Event, duration: float | None) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        async with bounded(duration):
            await done.wait()


async def refresh(live: Live, frame: Callable[[], RenderableType]) -> None:
    while True:
        live.update(frame())
        await asyncio.sleep(0.25)


async def warn_silent(state: ReaderModel, warn: Callable[[str], None]) -> None:
    """Say once (each engine, each kind of evidence) that an engine's telemetry does not reach
    this view: `--json` prints telemetry only, so its warnings go to stderr as they come."""
    said: set[tuple[str, bool]] = set()
    while True:
        await asyncio.sleep(1.0)
        for engine in state.silent_engines():
            key = (engine.source, engine.silent_since is None)
            if key not in said:
                said.add(key)
                warn(inert(silence_line(engine), SHOWN["reason"] * 3))
