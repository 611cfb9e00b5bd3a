"""A closed stdout (``cascade watch --json | head -1``) ends the command quietly with 0."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["ClosedPipeGuard", "guard_stdout", "stop_when_stdout_closes"]


class ClosedPipeGuard:
    """Wraps stdout: a write or flush that finds the reader gone points stdout at
    /dev/null (so the interpreter's last flush cannot fail) and exits with 0.

    Unix tools end this way when the reader of their output has what it wanted;
    rich and click would otherwise exit 1 (raising ``SystemExit`` also gets
    through the connector's callback isolation, which would swallow an error).

    A command that writes from inside its event loop (``watch --json``) must
    not exit from there, in the middle of the connector's work: it registers
    a ``stop`` with :meth:`stopping`, which is called instead, and ends itself.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._stops: list[Callable[[], None]] = []

    def write(self, text: str) -> int:
        """Write ``text``; if the reader has gone, stop (or exit 0)."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._closed()
            return len(text)

    def flush(self) -> None:
        """Flush; if the reader has gone, stop (or exit 0)."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    @contextlib.contextmanager
    def stopping(self, stop: Callable[[], None]) -> Iterator[None]:
        """Within the block, a gone reader calls ``stop()`` instead of exiting."""
        self._stops.append(stop)
        try:
            yield
        finally:
            self._stops.remove(stop)

    def _closed(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        except (OSError, ValueError):  # no file descriptor (a test's capture): nothing to quiet
            pass
        finally:
            os.close(devnull)
        if not self._stops:
            raise SystemExit(0)
        for stop in self._stops:
            stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Install :class:`ClosedPipeGuard` on ``sys.stdout`` (once)."""
    if not isinstance(sys.stdout, ClosedPipeGuard) and sys.stdout is not None:
        sys.stdout = ClosedPipeGuard(sys.stdout)


def stop_when_stdout_closes(stop: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
    """Within the block, ``stop()`` is called once stdout's reader has gone (see
    :class:`ClosedPipeGuard`); where stdout is not guarded, nothing is."""
    stdout = sys.stdout
    if isinstance(stdout, ClosedPipeGuard):
        return stdout.stopping(stop)
    return contextlib.nullcontext()
