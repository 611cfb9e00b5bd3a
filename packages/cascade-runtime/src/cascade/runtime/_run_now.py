"""``run``: a target run to its end in a new event loop, Ctrl-C as a cancel."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Mapping
from typing import Any

from cascade.interfaces import Connector

from ._engine import Engine

__all__ = ["run"]


def run(
    target: Any,
    connector: Connector | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    **engine_kwargs: Any,
) -> Any:
    """Run ``target`` in a new event loop:
    ``Engine(connector, **engine_kwargs).run(target, params=params)``.

    Ctrl-C cancels the run (``ENGINE_STOPPED`` is published with status
    ``Failed`` and error ``CancelledError: ...``, the connector is
    disconnected) and raises ``KeyboardInterrupt``.
    """
    engine = Engine(connector, **engine_kwargs)
    return asyncio.run(_interruptible(engine.run(target, params=params)))


async def _interruptible(run: Coroutine[Any, Any, Any]) -> Any:
    """Await ``run``, turning SIGINT into its cancellation and then ``KeyboardInterrupt``.

    Python 3.11's ``asyncio.run`` does this by itself, 3.10's does not (the
    interrupt would land anywhere, skipping the run's clean end); this gives
    every version the same behaviour. Outside the main thread, or where the
    loop cannot take signal handlers, ``run`` is simply awaited.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run)
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):
        return await task
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
