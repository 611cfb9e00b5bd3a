"""`cascade run RUN_ID`: one recorded run and every task of it, from the history database,
read and printed a page of tasks at a time."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ._context import CliContext
from ._history_db import Db, Json, cell, recorded_run_pages
from ._holds_text import recorded_holds_text
from ._inert import SHOWN, inert
from ._render import TimeFormat, duration
from ._runs import RUN_STYLES, STATE_STYLES, task_counts

if TYPE_CHECKING:
    from cascade.history import RunDetail, TaskHistory

__all__ = ["run"]

_STATES_SHOWN = 12  # the last ones of a task that changed state more often


def run(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run's id, or a prefix only it has.")
    ],
    json_output: Json = False,
    db: Db = None,
) -> None:
    """One recorded run: every task with its states and times, attempts, duration, error.

    Examples: cascade run 58a88765cea2; cascade run 58a88765 --json | jq '.tasks[].state'
    """
    pages = recorded_run_pages("run", db, run_id)
    if json_output:
        _echo_json(pages)
        return
    out = CliContext.of(ctx).out()
    times = TimeFormat(time.time())
    first = next(pages)
    out.print(_render(first, times))
    for page in pages:  # a page of tasks at a time: a big run is never all in memory
        out.print(_table(page, times))


def _echo_json(pages: Iterator[RunDetail]) -> None:
    """The run's JSON object on one line, as ``RunDetail.to_json`` makes it, written a page
    of tasks at a time."""
    first = next(pages)
    head = json.dumps(first.run.to_json())
    write = sys.stdout.write
    write(head[:-1] + (', "tasks": [' if head != "{}" else '{"tasks": ['))
    separator = ""
    for page in itertools.chain([first], pages):
        for task in page.tasks:
            write(separator + json.dumps(task.to_json()))
            separator = ", "
    write("]}\n")
    sys.stdout.flush()


def _states(task: TaskHistory, times: TimeFormat) -> Text:
    shown = task.states[-_STATES_SHOWN:]
    parts = [] if len(shown) == len(task.states) else [Text("… ")]
    first = shown[0].ts
    for index, change in enumerate(shown):
        when = times.at(change.ts) if index == 0 else f"+{duration(change.ts - first)}"
        parts.append(
            Text(f"{change.state.lower()} {when}", style=STATE_STYLES.get(change.state, ""))
        )
    return Text(" · ").join(parts)


def _render(detail: RunDetail, times: TimeFormat) -> Group:
    summary = detail.run
    took = duration(summary.duration) if summary.duration is not None else "running"
    head = Text.assemble(
        ("run ", ""),
        (inert(summary.run_id, SHOWN["name"]), "bold"),
        "  ",
        (summary.status, RUN_STYLES.get(summary.status, "")),
        f"  started {times.at(summary.started_at)} ({times.zone}), {took}",
    )
    where = Text(
        f"project {inert(summary.org_id, SHOWN['name'])}/{inert(summary.project_id, SHOWN['name'])}"
        f", engine {inert(summary.source, SHOWN['source'])}"
    )
    lines: list[Text | Table] = [
        head,
        where,
        Text("tasks: ").append_text(task_counts(summary.tasks)),
    ]
    if summary.error:
        lines.append(Text("error: ").append_text(cell(summary.error, SHOWN["error"], "red")))
    if summary.trace_id is not None:  # 32 hex digits, as decoded: nothing to escape
        lines.append(Text(f"trace {summary.trace_id}"))
    missing = _missing_line(summary.missing_events or 0, summary.dropped_telemetry)
    if missing is not None:
        lines.append(missing)
    lines.append(_table(detail, times))
    return Group(*lines)


def _table(detail: RunDetail, times: TimeFormat) -> Table:
    table = Table()
    for column in ("task", "state", "attempts", "duration", "held", "states", "error"):
        table.add_column(column)
    for task in detail.tasks:
        table.add_row(
            cell(task.task_name, SHOWN["name"], "bold"),
            Text(task.state, style=STATE_STYLES.get(task.state, "")),
            str(task.attempts),
            duration(task.duration_ms / 1000),
            _held(task, times),
            _states(task, times),
            cell(task.error, SHOWN["error"], "red"),
        )
    return table


def _held(task: TaskHistory, times: TimeFormat) -> Text | str:
    """How long it was held back and, where its engine said, by what (the last time)."""
    if not task.blocked_s:
        return "-"
    text = duration(task.blocked_s)
    if task.held_by is not None:
        text += ": " + recorded_holds_text(task.held_by, times)  # each text in it made inert
    return Text(text)


def _missing_line(missing: int, dropped: int) -> Text | None:
    """What the history lacks of the run, from the engine's numbers and its own drop count."""
    if missing:
        text = f"missing: {missing:,} events the engine numbered never reached the history"
        if dropped:
            text += f" (the engine itself dropped {dropped:,})"
        return Text(text + "; the tasks below may lack states", style="yellow")
    if dropped:
        return Text(f"missing: the engine dropped {dropped:,} events", style="yellow")
    return None
