"""SIGTERM as a stop: a run or a serving engine ends as a cancel ends it (its runs stopped, their
ends published, its offline status sent, stamped now) instead of the process dying at once,
which leaves only the broker's will, stamped when the connection was made, so that readers
showed an engine stopped seconds ago as last seen minutes ago.

Only where the application installed no SIGTERM handler of its own, on the main thread of a
loop that takes signal handlers (not Windows' proactor); each stop is undone when its run or
serving ends, and the handler goes with the last."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = ["SIGTERM_REASON", "stop_on_sigterm"]

_log = logging.getLogger("cascade.runtime.engine")

SIGTERM_REASON = "the process got SIGTERM"
"""Why a run SIGTERM stopped was cancelled (its ``RunCancelledError``, its end)."""

_stops: dict[asyncio.AbstractEventLoop, list[Callable[[], None]]] = {}
_installed: dict[asyncio.AbstractEventLoop, object] = {}  # what the loop's handler set


@contextlib.contextmanager
def stop_on_sigterm(stop: Callable[[], None]) -> Iterator[bool]:
    """While in the block, SIGTERM calls ``stop`` (and every other stop registered on this
    loop) on the running loop; yields whether it will (``False``: the application handles
    SIGTERM itself, or this is not the main thread, or the loop takes no signal handlers)."""
    loop = asyncio.get_running_loop()
    stops = _stops.get(loop)
    if stops is None:
        if not _may_handle(loop):
            yield False
            return
        stops = _stops[loop] = []
    stops.append(stop)
    try:
        yield True
    finally:
        stops.remove(stop)
        if not stops:
            del _stops[loop]
            _remove(loop)


def _may_handle(loop: asyncio.AbstractEventLoop) -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False  # the application's own handler (or one it chose to ignore it with)
    try:
        loop.add_signal_handler(signal.SIGTERM, _on_sigterm, loop)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    _installed[loop] = signal.getsignal(signal.SIGTERM)
    return True


def _remove(loop: asyncio.AbstractEventLoop) -> None:
    """The loop's handler removed, and SIGTERM's disposition what it is now: the default, or a
    handler the application installed meanwhile (which removing the loop's would reset)."""
    now = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(Exception):
        loop.remove_signal_handler(signal.SIGTERM)
    if now is not _installed.get(loop) and now is not None:
        with contextlib.suppress(Exception):
            signal.signal(signal.SIGTERM, now)
    _installed.pop(loop, None)


def _on_sigterm(loop: asyncio.AbstractEventLoop) -> None:
    stops = list(_stops.get(loop, ()))
    _log.warning("SIGTERM: stopping %d run(s) or serving engine(s) of this process", len(stops))
    for stop in stops:
        try:
            stop()
        except Exception:  # one stop that fails leaves the others to stop
            _log.exception("a stop on SIGTERM failed")
