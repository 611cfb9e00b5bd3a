"""A closed stdout (``cascade watch --json | head -1``) ends the command quietly with 0."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn, TextIO

__all__ = ["ClosedPipeGuard", "guard_stdout"]


class ClosedPipeGuard:
    """Wraps stdout: a write or flush that finds the reader gone points stdout at
    /dev/null (so the interpreter's last flush cannot fail) and exits with 0.

    Unix tools end this way when the reader of their output has what it wanted;
    rich and click would otherwise exit 1 (raising ``SystemExit`` also gets
    through the connector's callback isolation, which would swallow an error).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text``; exit 0 if the reader has gone."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._closed()

    def flush(self) -> None:
        """Flush; exit 0 if the reader has gone."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    def _closed(self) -> NoReturn:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        except (OSError, ValueError):  # no file descriptor (a test's capture): nothing to quiet
            pass
        finally:
            os.close(devnull)
        raise SystemExit(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Install :class:`ClosedPipeGuard` on ``sys.stdout`` (once)."""
    if not isinstance(sys.stdout, ClosedPipeGuard) and sys.stdout is not None:
        sys.stdout = ClosedPipeGuard(sys.stdout)
