"""Logging that stays readable under a flood of the same problem."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLogger"]


class RateLimitedLogger:
    """Logs each kind of problem at most once per ``interval`` seconds.

    Occurrences in between are counted, and the next message that gets
    through says how many were suppressed. Used for rejected input and
    dropped messages, where one hostile sender could otherwise flood the log.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``msg % args`` under ``key`` unless one was logged within the interval.

        Returns whether the message was logged.
        """
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """:meth:`log` at WARNING level."""
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: str, msg: str, *args: object) -> bool:
        """:meth:`log` at ERROR level."""
        return self.log(logging.ERROR, key, msg, *args)
