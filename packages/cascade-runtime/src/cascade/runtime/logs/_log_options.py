"""How an engine forwards its tasks' logs: the options users give, checked."""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["LogForwarding"]


@dataclass(frozen=True, slots=True)
class LogForwarding:
    """How an engine forwards its tasks' logs (``Engine(logs=LogForwarding(...))``).

    - ``level``: the lowest level forwarded (a name or a number; default ``INFO``). Only what
      the application's logging lets through reaches the engine: unconfigured, Python's
      logging lets ``WARNING`` and up through; ``logging.basicConfig(level=logging.INFO)``
      lets ``INFO`` through too.
    - ``lines_per_second``: each task's lines a second (a burst of as many is allowed);
      ``run_lines_per_second``: the run's, all tasks together. Beyond them lines are dropped
      (``rate``).
    - ``max_lines_per_task``: each task's lines in all (its attempts together); beyond,
      dropped (``budget``).
    - ``max_line_bytes``: a longer message (traceback included) is cut, and says so.
    - ``max_queue``: lines waiting for the sender at most; beyond, dropped (``queue``): a
      broker that is slow or away costs lines, never the run's memory or time.
    - ``batch_interval``: seconds between two batches at most while lines come.
    - ``capture_print``: also forward what tasks print (``sys.stdout`` as ``INFO`` lines and
      ``sys.stderr`` as ``WARNING`` ones, each with its ``stream``), a line at each newline;
      it is still printed. While a run captures, ``sys.stdout`` and ``sys.stderr`` are
      wrappers that pass everything through.
    """

    level: int | str = logging.INFO
    lines_per_second: float = 500.0
    run_lines_per_second: float = 5_000.0
    max_lines_per_task: int = 100_000
    max_line_bytes: int = 4096
    max_queue: int = 50_000
    batch_interval: float = 0.1
    capture_print: bool = False

    def __post_init__(self) -> None:
        for name in ("lines_per_second", "run_lines_per_second", "batch_interval"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"LogForwarding.{name} must be positive, not {value}")
        for name in ("max_lines_per_task", "max_line_bytes", "max_queue"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"LogForwarding.{name} must be at least 1, not {value}")
        _level_number(self.level)

    @property
    def level_number(self) -> int:
        """:attr:`level` as a number."""
        return _level_number(self.level)


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number
