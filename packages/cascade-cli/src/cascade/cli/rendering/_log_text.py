"""Task log lines as `cascade logs` prints them: a line of text each (every character a
terminal acts on escaped), or a JSON object each; and the notes of lines that are missing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Protocol

import typer

from cascade.interfaces.logs import LogLine
from cascade.interfaces.wire import LOG_LEVELS, MAX_LOG_LINE_BYTES, level_number
from cascade.reader import SHOWN, inert

from ._plural import counted

__all__ = [
    "RecordedLine",
    "dropped_note",
    "line_fields",
    "line_json",
    "line_text",
    "LOST_SAID",
    "batches_missing_note",
    "lost_note",
    "missed_note",
    "parse_level",
    "recorded_line",
]

_INDENT = "    "  # a message's lines after its first
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def parse_level(text: str | None) -> int:
    """``--level``'s number: a level's name (any case) or a number 0 to 100; ``0`` for none;
    :class:`typer.BadParameter` (exit 2) for anything else."""
    if text is None:
        return 0
    name = text.strip().upper()
    if name.isdigit() and int(name) <= 100:
        return int(name)
    number = LOG_LEVELS.get(_ALIASES.get(name, name))
    if number is None:
        raise typer.BadParameter(
            f"{text!r} is no level: debug, info, warning, error, critical, or 0 to 100",
            param_hint="'--level'",
        )
    return number


class RecordedLine(Protocol):
    """What a line the history recorded has (``cascade.history.RecordedLogLine``)."""

    @property
    def run_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def task_name(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def ts(self) -> float: ...
    @property
    def level(self) -> str: ...
    @property
    def level_number(self) -> int | None: ...
    @property
    def logger(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def stream(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def trace_id(self) -> str | None: ...
    @property
    def span_id(self) -> str | None: ...


def recorded_line(recorded: RecordedLine) -> LogLine:
    """A line the history recorded, as the engine sent it."""
    stamp = datetime.fromtimestamp(recorded.ts, timezone.utc).isoformat()
    level = recorded.level if recorded.level in LOG_LEVELS else "INFO"
    stream = recorded.stream if recorded.stream in ("stdout", "stderr") else None
    return LogLine(
        ts=stamp,
        task_id=recorded.task_id,
        task_name=recorded.task_name,
        message=recorded.message,
        level=level,  # type: ignore[arg-type]
        attempt=recorded.attempt,
        n=recorded.n,
        logger=recorded.logger,
        level_number=recorded.level_number,
        stream=stream,  # type: ignore[arg-type]
        trace_id=recorded.trace_id,
        span_id=recorded.span_id,
    )


def _clock(ts: str) -> str:
    """``HH:MM:SS.mmm`` of an ISO 8601 time, in the local zone (the text itself if none)."""
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        return inert(ts, 32)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    local = when.astimezone()
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def line_text(line: LogLine) -> str:
    """``HH:MM:SS.mmm LEVEL task_name[#attempt] logger: message``, a message's later lines
    indented under it; the attempt said from the second on, the logger when it has one (a
    print says its stream)."""
    task = inert(line.task_name, SHOWN["name"])
    if line.attempt > 1:
        task += f"#{line.attempt}"
    who = line.logger or line.stream or ""
    head = f"{_clock(line.ts)} {line.level:<8} {task} "
    if who:
        head += inert(who, SHOWN["name"]) + ": "
    parts = line.message.splitlines() or [""]
    body = f"\n{_INDENT}".join(inert(part, MAX_LOG_LINE_BYTES) for part in parts)
    return head + body


def line_json(line: LogLine, run_id: str, source: str) -> str:
    """The line as one ASCII JSON object (every field, defaults too), with its run and source."""
    return json.dumps(line_fields(line, run_id, source))


def line_fields(line: LogLine, run_id: str, source: str) -> dict[str, Any]:
    """The fields of :func:`line_json`'s object, in its order."""
    return {
        "ts": line.ts,
        "run_id": run_id,
        "source": source,
        "task_id": line.task_id,
        "task_name": line.task_name,
        "attempt": line.attempt,
        "n": line.n,
        "level": line.level,
        "level_number": level_number(line),
        "logger": line.logger,
        "message": line.message,
        "stream": line.stream,
        "trace_id": line.trace_id,
        "span_id": line.span_id,
    }


def dropped_note(task_name: str, lines: int, reason: str) -> str:
    """``312 lines of load dropped (rate)``: lines its engine said it dropped."""
    name = inert(task_name, SHOWN["name"])
    return f"{counted(lines, 'line')} of {name} dropped ({inert(reason, 32)})"


def missed_note(task_name: str, lines: int) -> str:
    """``6 lines of load missing``: a gap in a task's line numbers its engine did not say it
    dropped."""
    return f"{counted(lines, 'line')} of {inert(task_name, SHOWN['name'])} missing"


def earlier_note(task_name: str, lines: int) -> str:
    """``10 earlier lines of load not shown (...)``: what a task logged before `cascade logs
    -f` listened, where no history printed them."""
    return (
        f"{lines:,} earlier line{'s' if lines != 1 else ''} of "
        f"{inert(task_name, SHOWN['name'])} not shown (logged before this listened, with no "
        "history that has them)"
    )


LOST_SAID = "lost on the way or before a recorder listened (not in the history)"
"""What lines a run's engine numbered that the history has neither stored nor heard dropped
are said to be."""


def lost_note(task_name: str, lines: int) -> str:
    """``384 lines of load lost on the way or before a recorder listened (...)``: the
    history's count of a task's lines it lacks (:attr:`cascade.history.LogCount.lost`)."""
    return f"{counted(lines, 'line')} of {inert(task_name, SHOWN['name'])} {LOST_SAID}"


def batches_missing_note(batches: int) -> str:
    """``30 batches of lines missing (...)``: the numbers of a run's log batches the history
    lacks (:attr:`cascade.history.LogBatches.missing`), whose lines are of tasks unknown, a
    task that lost every line among them."""
    return (
        f"{counted(batches, 'batch', 'batches')} of lines missing, of any task "
        f"({LOST_SAID.removesuffix(' (not in the history)')})"
    )
