"""`cascade logs -f`: a run's log lines printed as they arrive, until its engine says the run
stopped (the logs' topic has no end of its own; another source's word ends nothing), or
Ctrl-C."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO

from cascade.interfaces import Connector, LogLine, Message, logs_filter, telemetry_filter
from cascade.interfaces.reader import (
    HeardBatch,
    LogFollower,
    ReaderModel,
    RunLogs,
    inert,
    line_matches,
)

from ...rendering._log_text import (
    dropped_note,
    earlier_note,
    line_json,
    line_text,
    missed_note,
)

__all__ = ["STOP_GRACE", "LogPrinter", "follow_logs"]

STOP_GRACE = 0.3
"""Seconds `cascade logs -f` still listens after the run's ENGINE_STOPPED: its engine sends
the last lines' batch before the event, but another connection may deliver it after."""


@dataclass
class LogPrinter:
    """Prints the lines asked for (``task``, ``level``, ``since``), as text or JSON lines,
    each at most once: a line the history printed already (``(task_id, attempt)``'s highest
    ``n`` recorded) is not printed again when it arrives live."""

    task: str | None = None
    level: int = 0
    since: float | None = None
    as_json: bool = False
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    notes: IO[str] = field(default_factory=lambda: sys.stdout)
    printed: dict[tuple[str, int], int] = field(default_factory=dict)
    missed_said: dict[str, int] = field(default_factory=dict)
    """Per task, the lines said missing so far (a gap a drop said earlier explains is not)."""
    shown: int = 0
    """The lines printed so far."""
    joined: set[str] = field(default_factory=set)
    """The tasks heard live (their lines are numbered across attempts): a first line after
    others the history did not print says how many were."""

    def wanted(self, line: LogLine, stamp: float | None) -> bool:
        """Whether ``line`` (logged at ``stamp``, epoch seconds) is one of those asked for."""
        if self.since is not None and stamp is not None and stamp < self.since:
            return False
        return line_matches(line, self.task, self.level)

    def lines(self, lines: list[tuple[LogLine, str, str]]) -> None:
        """Print ``(line, run_id, source)``s not printed yet, in one write."""
        text = []
        for line, run_id, source in lines:
            key = (line.task_id, line.attempt)
            if line.n:
                if line.n <= self.printed.get(key, 0):
                    continue
                self.printed[key] = line.n
            text.append(line_json(line, run_id, source) if self.as_json else line_text(line))
        self.shown += len(text)
        self._write(self.out, text)

    def batch(
        self,
        heard: HeardBatch,
        stamp: Callable[[LogLine], float | None],
        run: RunLogs | None = None,
    ) -> None:
        """What one live batch added: its lines asked for, and where lines of the tasks asked
        for are missing, why: dropped by the engine (as it says), or missing, each line once
        whichever batch said what (``run``: the follower's counts of the run, which set the
        drops a task's engine said against the gaps in its numbers; without it, this batch's
        drops only)."""
        said: dict[str, int] = {}
        notes = []
        for dropped in heard.dropped:
            said[dropped.task_id] = said.get(dropped.task_id, 0) + dropped.lines
            if self.of_task(dropped.task_id, dropped.task_name):
                notes.append(dropped_note(dropped.task_name, dropped.lines, dropped.reason))
        for h in heard.lines:  # each task's first line heard: after others no history printed?
            task_id = h.line.task_id
            if task_id in self.joined:
                continue
            self.joined.add(task_id)
            before = max((n for (t, _), n in self.printed.items() if t == task_id), default=0)
            if h.line.n > before + 1 and self.of_task(task_id, h.line.task_name):
                notes.append(earlier_note(h.line.task_name, h.line.n - 1 - before))
        for task_id, task_name, gap in heard.missing:
            counts = run.tasks.get(task_id) if run is not None else None
            if counts is None:
                unexplained = gap - said.get(task_id, 0)
            else:  # what the engine has not said it dropped, of every gap so far, not told yet
                unexplained = counts.missed - self.missed_said.get(task_id, 0)
                self.missed_said[task_id] = max(counts.missed, self.missed_said.get(task_id, 0))
            if unexplained > 0 and self.of_task(task_id, task_name):
                notes.append(missed_note(task_name, unexplained))
        self._write(self.notes, notes)
        self.lines(
            [
                (h.line, h.run_id, h.source)
                for h in heard.lines
                if self.wanted(h.line, stamp(h.line))
            ]
        )

    def note(self, text: str) -> None:
        """One line of its own among the notes (where dropped and missing lines are said)."""
        self._write(self.notes, [text])

    def of_task(self, task_id: str, task_name: str) -> bool:
        """Whether ``task_id`` (named ``task_name``) is one of the tasks asked for."""
        probe = LogLine(ts="", task_id=task_id, task_name=task_name, message="")
        return line_matches(probe, self.task)

    def _write(self, out: IO[str], text: list[str]) -> None:
        if text:
            out.write("\n".join(text) + "\n")
            out.flush()


async def follow_logs(
    connector: Connector,
    run_id: str,
    printer: LogPrinter,
    recorded: Callable[[], Awaitable[None]],
    stamp: Callable[[LogLine], float | None],
    stop_grace: float = STOP_GRACE,
) -> LogFollower:
    """Print ``run_id``'s lines as they arrive, after ``recorded()`` printed the history's
    (what arrives meanwhile waits, then goes through the printer's dedupe), until
    ``stop_grace`` seconds after the run's ENGINE_STOPPED; returns the follower (its counts
    of what was missed and refused)."""
    prefix = connector.topic_prefix
    logs = LogFollower(prefix=prefix, keep_lines=0, max_runs=1)
    held: list[HeardBatch] | None = []  # what arrives while the history is read
    done = asyncio.Event()
    ending: list[asyncio.TimerHandle] = []
    doubted: set[str] = set()
    loop = asyncio.get_running_loop()

    def on_logs(message: Message) -> None:
        heard = logs.apply(message)
        if heard is None or heard.run_id != run_id:
            return
        if held is not None:
            held.append(heard)
        else:
            printer.batch(heard, stamp, logs.runs.get(run_id))

    runs = ReaderModel(prefix=prefix)  # the run's owner and end, as every reader takes them

    def on_telemetry(message: Message) -> None:
        known = run_id in runs.runs
        runs.apply(message)
        source = _stopped_by(message, run_id)
        if source is None or ending:
            return
        logged, run = logs.runs.get(run_id), runs.runs.get(run_id)
        # the end said by the run's owner: the source its lines came from; before any line,
        # one something vouches for (its start seen, a sourced topic) or heard before its end.
        # A stop out of nowhere, or another source's, ends nothing.
        if logged is not None:
            believed = source == logged.source
        elif run is None:
            believed = False
        else:
            believed = run.finished and run.source == source and (run.confirmed or known)
        if believed:
            ending.append(loop.call_later(stop_grace, done.set))
        elif source not in doubted:
            doubted.add(source)
            printer.note(
                f"the run's end as {inert(source, 200)} says it, which nothing vouches for as "
                "its engine (no line of the run came from it, nor anything before its end): "
                "still following (Ctrl-C ends)"
            )

    await connector.subscribe(logs_filter(run_id=run_id, prefix=prefix), on_logs)
    await connector.subscribe(telemetry_filter(run_id=run_id, prefix=prefix), on_telemetry)
    await recorded()
    waiting, held = held or [], None
    for heard in waiting:
        printer.batch(heard, stamp, logs.runs.get(run_id))
    await done.wait()
    return logs


def _stopped_by(message: Message, run_id: str) -> str | None:
    """The source ``message`` claims if it is ``run_id``'s ``ENGINE_STOPPED``, else ``None``."""
    body = message.payload.get("body")
    kind = message.topic.rsplit("/", 2)[-2:]  # [..., events] or [events, source]
    if "events" not in kind or not isinstance(body, dict):
        return None
    if body.get("event") != "ENGINE_STOPPED" or message.payload.get("run_id") != run_id:
        return None
    source = message.payload.get("source")
    return source if isinstance(source, str) else None
