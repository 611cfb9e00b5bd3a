"""The open run's task log lines in a page's stream: a part of each event, the lines new since
the last (of the page's task, or every task's), bounded in bytes.

A stream's first ``logs`` part (``"reset": true``) carries the last lines that fit in
:data:`LOG_BYTES_PER_EVENT`; each later one the lines heard since, oldest first, at most that
many bytes (the rest follows in the next event, as ``more`` says). An event goes at most every
``STREAM_INTERVAL`` (0.25 s): a stream carries at most 160 kB of lines a second (4 events of
40 kB), under the 200 kB/s one busy open run may cost. A page that falls further behind than
the kept lines is told how many it ``skipped``.
"""

from __future__ import annotations

import json
from typing import Any

from cascade.interfaces.logs import LogLine
from cascade.reader import HeardLine, LogFollower, RunLogs, line_matches

__all__ = ["LOG_BYTES_PER_EVENT", "LogWindow", "line_dict"]

LOG_BYTES_PER_EVENT = 40_000
"""Bytes of log lines one event of a stream carries at most (one line at least)."""


def line_dict(heard: HeardLine) -> dict[str, Any]:
    """One line as the page gets it: ``index`` (its place among its run's lines) and its fields."""
    line = heard.line
    return {
        "index": heard.index,
        "ts": line.ts,
        "task_id": line.task_id,
        "task_name": line.task_name,
        "attempt": line.attempt,
        "n": line.n,
        "level": line.level,
        "logger": line.logger,
        "stream": line.stream,
        "message": line.message,
    }


class LogWindow:
    """What a stream has sent of its open run's log lines: up to which line, of which task
    (``None``: every task's)."""

    def __init__(self, task: str | None = None, max_bytes: int = LOG_BYTES_PER_EVENT) -> None:
        self.task = task
        self.max_bytes = max_bytes
        self._run: RunLogs | None = None
        self._through = 0
        self._started = False

    def part(self, logs: LogFollower, run_id: str) -> tuple[dict[str, Any] | None, bool]:
        """The next event's ``logs`` part (``None``: nothing new), and whether lines are left
        for the next event."""
        run = logs.runs.get(run_id)
        reset = not self._started or run is not self._run
        self._started, self._run = True, run
        if run is None:
            self._through = 0
            return ({"reset": True, "lines": [], "task": self.task} if reset else None), False
        if reset:
            self._through = 0
        if not reset and run.heard <= self._through:
            return None, False
        lines = run.lines(after=self._through, task=self.task)
        if not lines and not reset:
            self._through = run.heard  # other tasks' lines only
            return None, False
        skipped = 0
        if reset:
            chosen = self._last_that_fit(lines)
            cut = False
        else:
            first = run.kept[0].index if run.kept else run.heard + 1
            skipped = max(0, first - 1 - self._through) if self._through else 0
            chosen, cut = self._first_that_fit(lines)
        self._through = chosen[-1][0].index if cut else run.heard
        part: dict[str, Any] = {"lines": [text for _, text in chosen], "task": self.task}
        if reset:
            part["reset"] = True
        if skipped:
            part["skipped"] = skipped
        part.update(self._counts(run))
        return part, cut

    def lines_now(self, logs: LogFollower, run_id: str) -> dict[str, Any] | None:
        """The first part as plain JSON values (``/api/state``'s ``logs``)."""
        part = self.part(logs, run_id)[0]
        if part is not None:
            part["lines"] = [json.loads(text) for text in part["lines"]]
        return part

    def _encoded(self, lines: list[HeardLine]) -> list[tuple[HeardLine, bytes]]:
        return [(heard, json.dumps(line_dict(heard)).encode()) for heard in lines]

    def _first_that_fit(self, lines: list[HeardLine]) -> tuple[list[tuple[HeardLine, bytes]], bool]:
        chosen: list[tuple[HeardLine, bytes]] = []
        size = 0
        for heard, text in self._encoded(lines):
            if chosen and size + len(text) > self.max_bytes:
                return chosen, True
            chosen.append((heard, text))
            size += len(text)
        return chosen, False

    def _last_that_fit(self, lines: list[HeardLine]) -> list[tuple[HeardLine, bytes]]:
        chosen: list[tuple[HeardLine, bytes]] = []
        size = 0
        for heard in reversed(lines):
            text = json.dumps(line_dict(heard)).encode()
            if chosen and size + len(text) > self.max_bytes:
                break
            chosen.append((heard, text))
            size += len(text)
        chosen.reverse()
        return chosen

    def _counts(self, run: RunLogs) -> dict[str, int]:
        """What is missing of the lines shown: let go by the bounds, dropped by the engine,
        missed on the way (of the task's, or every task's)."""
        dropped = missed = 0
        for counts in run.tasks.values():
            probe = LogLine(ts="", task_id=counts.task_id, task_name=counts.task_name, message="")
            if line_matches(probe, self.task):
                dropped += counts.dropped
                missed += counts.missed
        return {"let_go": run.let_go, "dropped": dropped, "missed": missed}
