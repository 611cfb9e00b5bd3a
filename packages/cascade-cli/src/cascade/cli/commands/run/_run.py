"""How one recorded run is shown: its header and summary (counts by state, slowest tasks,
first failures), then its tasks' table, or JSON (the command is :mod:`.commands.run`; what
it renders, the history's :class:`~cascade.history.RunReport`)."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from cascade.control.run_ids import short_id
from cascade.reader import SHOWN, inert

from ...plumbing._history_db import cell
from ...rendering._fit import Cell, Column, fitted, left_out_line
from ...rendering._holds_text import recorded_holds_brief
from ...rendering._log_text import LOST_SAID, batches_missing_note
from ...rendering._plural import counted
from ...rendering._render import STATE_STYLES, TimeFormat, duration
from ..runs._runs import RUN_STYLES, decided_text, refused_text, task_counts
from ._run_decisions import attempts_text, decisions_lines, held_lines
from ._run_lineage import lineage_lines, lost_lines

if TYPE_CHECKING:
    from cascade.history import (
        Claim,
        LogCount,
        LoopIterations,
        MapItems,
        RunDetail,
        RunReport,
        RunSummary,
        TaskHistory,
    )

__all__ = [
    "echo_run_json",
    "picked_text",
    "print_run",
    "render_run",
    "summary_json",
    "task_cell",
    "task_json",
    "task_table",
]

_STATES_SHOWN = 12  # the last ones of a task that changed state more often
# The tasks' table: the task (its id: a run's tasks often share a name), its state and
# duration are never left out; its timeline goes first when the terminal is narrow, then its
# error (cut to a line: the failures are said whole above the table), then its attempts, and
# the time it was held last.
_COLUMNS = (
    Column("task", fold=22),
    Column("state", whole=True),
    Column("attempts", whole=True, rank=3, justify="right"),
    Column("duration", whole=True),
    Column("held", rank=4),
    Column("states", rank=1, fold=24),
    Column("error", rank=2, one_line=True),
)
_LOGS = Column("logs", whole=True, rank=3, justify="right")  # where the run has logs
# where a page has a map: its items counted by state (never left out: what its row stands for)
_ITEMS = Column("items", fold=24)
_TIMES = "\N{MULTIPLICATION SIGN}"
_TRACEBACK_LINE = 300  # characters shown of a traceback's line (a source line, a message)


def picked_text(
    states: list[str] | None,
    name_glob: str | None,
    map_id: str | None = None,
    *,
    loop: bool = False,
) -> str:
    """What ``--state``, ``--task`` and ``--map`` pick, as the tasks' heading says it
    (``failed, held; named load_*; items of transform-7``, ``iterations of counter-4`` for a
    ``loop``'s; ``""``: every task)."""
    parts = []
    if states is not None:
        parts.append(", ".join(state.lower() for state in states))
    if name_glob is not None:
        parts.append(f"named {inert(name_glob, SHOWN['name'])}")
    if map_id is not None:
        members = "iterations" if loop else "items"
        parts.append(f"{members} of {inert(map_id, SHOWN['name'])}")
    return "; ".join(parts)


def task_json(report: RunReport, task: TaskHistory) -> dict[str, Any]:
    """A task's object of `cascade run --json`: ``TaskHistory.to_json`` with the lines it
    logged (``log_lines``), its engine dropped (``log_dropped``) and the history lacks
    (``log_lost``: :attr:`~cascade.history.LogCount.lost`)."""
    counted = report.logs.get(task.task_id)
    if counted is None:
        return {**task.to_json(), "log_lines": 0, "log_dropped": 0, "log_lost": 0}
    return {
        **task.to_json(),
        "log_lines": counted.lines,
        "log_dropped": counted.dropped,
        "log_lost": counted.lost,
    }


def summary_json(report: RunReport, listed: int) -> dict[str, Any]:
    """The ``summary`` object of `cascade run --json`, ``listed`` tasks having been written:
    the run's tasks counted by state and in all, these tasks as ``tasks`` has them, how many
    more the filters pick than were listed (``--limit``), its log batches
    (``log_batches``: ``stored``, ``last_seq``, ``missing``; ``null``: no logs), its maps
    (``maps``: each one's ``task_id``, ``task_name``, ``items`` and their ``counts``), and its
    loops (``loops``: each one's ``task_id``, ``task_name``, ``iterations``, their
    ``counts``, and the ``latest`` one's task id and ``latest_state``)."""
    counts = report.detail.run.tasks
    return {
        "counts": dict(counts),
        "total": sum(counts.values()),
        "slowest": [task.to_json() for task in report.slowest],
        "failures": [task.to_json() for task in report.failures],
        "held": [task.to_json() for task in report.held],
        "decisions": [record.to_json() for record in report.decisions],
        "reused": dict(report.reused),
        "log_batches": None if report.log_batches is None else report.log_batches.to_json(),
        "matched": report.matched,
        "more": max(0, report.matched - listed),
        "maps": [entry.to_json() for entry in report.maps],
        "loops": [entry.to_json() for entry in report.loops],
    }


def echo_run_json(pages: Iterator[RunDetail], report: RunReport) -> None:
    """The run's JSON object on one line, as ``RunDetail.to_json`` makes it, written a page
    of tasks at a time (the first, the report's), and its ``summary`` (:func:`summary_json`)
    after them."""
    first = next(pages)
    head = json.dumps(first.run.to_json())
    write = sys.stdout.write
    write(head[:-1] + (', "tasks": [' if head != "{}" else '{"tasks": ['))
    separator = ""
    listed = 0
    for page in itertools.chain([first], pages):
        for task in page.tasks:
            write(separator + json.dumps(task_json(report, task)))
            separator = ", "
            listed += 1
    write('], "summary": ' + json.dumps(summary_json(report, listed)) + "}\n")
    sys.stdout.flush()


def _heading(title: str, rest: str = "", *, none: bool = False) -> Text:
    """``Failures: 3``: a section's title in bold, and ``none`` (dim) when it is empty."""
    text = Text(title, style="bold")
    if rest:
        text.append(f": {rest}")
    if none:
        text.append(": " if not rest else " ").append("none", style="dim")
    return text


def _states(task: TaskHistory, times: TimeFormat) -> Text:
    shown = task.states[-_STATES_SHOWN:]
    if not shown:
        return Text("-")
    parts = [] if len(shown) == len(task.states) else [Text("… ")]
    first = shown[0].ts
    for index, change in enumerate(shown):
        when = times.short(change.ts) if index == 0 else f"+{duration(change.ts - first)}"
        parts.append(
            Text(f"{change.state.lower()} {when}", style=STATE_STYLES.get(change.state, ""))
        )
    return Text(" · ").join(parts)


def _counts(summary: RunSummary) -> Text:
    total = sum(summary.tasks.values())
    if not total:
        return Text("none", style="dim")
    return Text(f"{total:,}: ").append_text(task_counts(summary.tasks))


def _indented(grid: Table) -> Padding:
    return Padding(grid, (0, 0, 0, 2), expand=False)


def _slowest(tasks: list[TaskHistory]) -> list[RenderableType]:
    if not tasks:
        return [_heading("Slowest", none=True)]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_column(overflow="fold", style="dim")
    for task in tasks:
        grid.add_row(
            duration(task.duration_ms / 1000),
            cell(task.task_name, SHOWN["name"], "bold"),
            cell(task.task_id, SHOWN["name"]),
        )
    return [_heading("Slowest"), _indented(grid)]


def _failures(tasks: list[TaskHistory], failed: int, times: TimeFormat) -> list[RenderableType]:
    if not tasks:
        return [_heading("Failures", none=True)]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(overflow="fold")
    grid.add_column(overflow="fold", style="dim")
    grid.add_column(overflow="fold")
    for task in tasks:
        grid.add_row(
            cell(task.task_name, SHOWN["name"], "bold"),
            cell(task.task_id, SHOWN["name"]),
            cell(task.error, SHOWN["error"], "red"),
        )
        if task.decisions or task.attempts > 1:  # how it came to fail: each attempt
            grid.add_row("", "", attempts_text(task, times))
    lines: list[RenderableType] = [
        _heading("Failures", f"{failed:,}, in the order they failed"),
        _indented(grid),
        *_first_traceback(tasks[0]),
    ]
    if failed > len(tasks):
        more = f"  … {failed - len(tasks):,} more: --state failed lists them"
        lines.append(Text(more, style="dim"))
    return lines


def _first_traceback(task: TaskHistory) -> list[RenderableType]:
    """The traceback of the first failure's latest failed attempt, indented, every line made
    inert (nothing where its engine sent none)."""
    change = next((c for c in reversed(task.states) if c.traceback is not None), None)
    if change is None or change.traceback is None:
        return []
    name = inert(task.task_name, SHOWN["name"])
    title = Text(f"  traceback of {name}, attempt {change.attempt}:", style="dim")
    lines = change.traceback.rstrip("\n").split("\n")  # any other control shows escaped
    return [title, Text("\n").join(Text("    " + inert(line, _TRACEBACK_LINE)) for line in lines)]


_VOUCHED = {
    "start": "its start says so",
    "topic": "its own topic says so",
    "online": "online by its status",
}


def _claims_line(claims: list[Claim]) -> Text:
    """The other sources that spoke of the run, and what became of what they said."""
    said = []
    for claim in claims[:5]:
        parts = [f"{claim.set_aside:,} set aside"] if claim.set_aside else []
        parts += [f"{claim.refused:,} refused"] if claim.refused else []
        said.append(f"{inert(claim.source, SHOWN['source'])} ({', '.join(parts)})")
    more = f", {len(claims) - 5:,} more" if len(claims) > 5 else ""
    return Text(
        f"also claimed by: {'; '.join(said)}{more} (not believed as its engine)", style="yellow"
    )


def render_run(report: RunReport, times: TimeFormat, picked: str = "") -> Group:
    """The run's header (id, status, times, where, its tasks counted by state, what it lacks)
    and its summary: slowest tasks, first failures, and the heading of its tasks (those
    ``picked``: :func:`picked_text`)."""
    summary = report.detail.run
    took = duration(summary.duration) if summary.duration is not None else "running"
    if summary.status == "Lost":  # over at its engine's death: its clock stops there
        took = "lost" if summary.duration is None else f"lost after {took}"
    head = Text.assemble(
        ("run ", ""),
        (inert(summary.run_id, SHOWN["name"]), "bold"),
        "  ",
        (summary.status, RUN_STYLES.get(summary.status, "")),
        (f" · {decided_text(summary)}" if summary.decisions else "", "yellow"),
        f"  started {times.at(summary.started_at)} ({times.zone}), {took}",
    )
    vouched = _VOUCHED.get(summary.vouched or "", "unconfirmed: its word only")
    where = Text(
        f"project {inert(summary.org_id, SHOWN['name'])}/{inert(summary.project_id, SHOWN['name'])}"
        f", engine {inert(summary.source, SHOWN['source'])} ({vouched})"
    )
    lines: list[RenderableType] = [head, *lost_lines(summary, times)]
    lines += [*lineage_lines(summary, report.reused, times), where]
    lines.append(Text("tasks: ").append_text(_counts(summary)))
    if summary.error:
        lines.append(Text("error: ").append_text(cell(summary.error, SHOWN["error"], "red")))
    if summary.trace_id is not None:  # 32 hex digits, as decoded: nothing to escape
        lines.append(Text(f"trace {summary.trace_id}"))
    missing = _missing_line(summary.missing_events or 0, summary.dropped_telemetry)
    if missing is not None:
        lines.append(missing)
    if summary.refused:
        lines.append(
            Text(
                f"refused: {refused_text(summary.refused)} (messages about the run no engine "
                "of it can have sent: stored nowhere)",
                style="yellow",
            )
        )
    if summary.claims:
        lines.append(_claims_line(summary.claims))
    if report.logs or report.log_batches is not None:
        lines.append(_logs_line(report))
    lines += _slowest(report.slowest)
    lines += _failures(report.failures, summary.tasks.get("FAILED", 0), times)
    lines += held_lines(report.held, summary.tasks.get("HELD", 0), times)
    lines += decisions_lines(report.decisions, times)
    which = f" ({picked})" if picked else ""
    if report.matched:
        heading = _heading(f"Tasks{which}", f"{report.matched:,}")
        if report.folded:
            rows = "its row" if len(report.maps) == 1 else "their rows"
            heading.append(
                f" ({counted(report.folded, 'item')} of {counted(len(report.maps), 'map')} "
                f"folded into {rows}: --items lists them)",
                style="dim",
            )
        if report.folded_iterations:
            rows = "its row" if len(report.loops) == 1 else "their rows"
            heading.append(
                f" ({counted(report.folded_iterations, 'iteration')} of "
                f"{counted(len(report.loops), 'loop')} folded into {rows}: --items lists them)",
                style="dim",
            )
        lines.append(heading)
    else:
        lines.append(_heading(f"Tasks{which}", none=True))
    return Group(*lines)


def task_table(
    detail: RunDetail,
    times: TimeFormat,
    width: int,
    logs: Mapping[str, LogCount] | None = None,
    maps: Mapping[str, MapItems | LoopIterations] | None = None,
) -> tuple[Table, list[str]]:
    """A page of the run's tasks as a table ``width`` wide at most, and the headers of the
    columns left out to fit it (see :func:`~._fit.fitted`); with ``logs`` (the run's
    :meth:`~cascade.history.History.log_counts`), the lines each task logged; with ``maps``
    (the run's maps and loops, by task id), a map's items, a loop's iterations, counted by
    state in its row, where the page has one."""
    known = maps or {}
    folds = {task.task_id: known[task.task_id] for task in detail.tasks if task.task_id in known}
    rows: list[list[Cell]] = [
        [
            task_cell(task.task_name, task.task_id),
            _state(task),
            *([_items(folds.get(task.task_id))] if folds else []),
            str(task.attempts),
            duration(task.duration_ms / 1000),
            _held(task, times),
            _states(task, times),
            cell(task.error, SHOWN["error"], "red"),
            *([_logged(logs.get(task.task_id))] if logs else []),
        ]
        for task in detail.tasks
    ]
    columns = (*_COLUMNS[:2], _ITEMS, *_COLUMNS[2:]) if folds else _COLUMNS
    return fitted((*columns, _LOGS) if logs else columns, rows, width)


def _items(entry: MapItems | LoopIterations | None) -> Cell:
    """A map's items, how many after a multiplication sign, then by state (``10,000:
    completed 9,998 failed 2``, the sign before it); a loop's iterations so, then its latest
    (``1,000 iterations: completed 999 failed 1; latest @1001 failed``); ``-`` for a task
    that is neither."""
    from cascade.history import LoopIterations

    if entry is None:
        return "-"
    if isinstance(entry, LoopIterations):
        latest = Text(f"; latest @{entry.number} ").append(
            entry.latest_state.lower(), STATE_STYLES.get(entry.latest_state, "")
        )
        return (
            Text(f"{_TIMES}{entry.iterations:,} iterations: ")
            .append_text(task_counts(entry.counts))
            .append_text(latest)
        )
    return Text(f"{_TIMES}{entry.items:,}: ").append_text(task_counts(entry.counts))


def task_cell(name: str, task_id: str) -> Text:
    """A task as a table row names it: its id (``transform-12``: the runtime's ids are the name
    and a number), the name in bold; an id that does not start with the name follows it."""
    shown_id = inert(task_id, SHOWN["name"])
    if task_id.startswith(name) and task_id != name:
        return Text.assemble((inert(name, SHOWN["name"]), "bold"), shown_id[len(name) :])
    if task_id == name:
        return Text(shown_id, style="bold")
    return Text.assemble((inert(name, SHOWN["name"]), "bold"), " ", (shown_id, "dim"))


def _state(task: TaskHistory) -> Text:
    """Its last state; a reused or cached result's with the run it came from."""
    text = Text(task.state, style=STATE_STYLES.get(task.state, ""))
    said = "cached" if task.cached else "reused"
    if task.reused_from is not None:
        text.append(f" {said} from {inert(short_id(task.reused_from), SHOWN['name'])}", "cyan")
    elif task.cached:  # by a cache policy: no run kept it
        text.append(" cached", "cyan")
    return text


def _logged(count: LogCount | None) -> Cell:
    """``120`` lines, ``120 +5 dropped +3 lost`` (those in yellow), ``-`` for none."""
    if count is None or not (count.lines or count.dropped or count.lost):
        return "-"
    text = Text(f"{count.lines:,}")
    if count.dropped:
        text.append(f" +{count.dropped:,} dropped", style="yellow")
    if count.lost:
        text.append(f" +{count.lost:,} lost", style="yellow")
    return text


def _logs_line(report: RunReport) -> Text:
    """``logs: 1,234 lines of 12 tasks, 56 dropped by their engine, 384 lost on the way``,
    and the batches missing (``; 30 batches of lines missing ...``: whichever tasks' lines)."""
    lines = sum(count.lines for count in report.logs.values())
    dropped = sum(count.dropped for count in report.logs.values())
    lost = sum(count.lost for count in report.logs.values())
    text = Text(f"logs: {counted(lines, 'line')} of {counted(len(report.logs), 'task')}")
    if dropped:
        text.append(f", {dropped:,} dropped by their engine", style="yellow")
    if lost:
        text.append(f", {lost:,} {LOST_SAID}", style="yellow")
    missing = report.log_batches.missing if report.log_batches is not None else 0
    if missing:
        text.append(f"; {batches_missing_note(missing)}", style="yellow")
    return text


def _more_line(more: int, filtered: bool) -> Text | None:
    """``… 99,980 more tasks: --limit 0 for all, or --state/--task to filter`` (dim); ``None``
    when every task picked was listed."""
    if more <= 0:
        return None
    how = "--limit 0 for all" + ("" if filtered else ", or --state/--task to filter")
    return Text(
        f"… {counted(more, 'more task')}{' picked' if filtered else ''}: {how}", style="dim"
    )


def print_run(
    out: Console,
    pages: Iterator[RunDetail],
    report: RunReport,
    times: TimeFormat,
    picked: str = "",
) -> None:
    """The run's header and summary, then its tasks a page (a table) at a time (the first,
    the report's), what the tables left out to fit, and how many more tasks there are."""
    first = next(pages)
    out.print(render_run(report, times, picked))
    listed = 0
    left_out: list[str] = []
    maps: dict[str, MapItems | LoopIterations] = {entry.task_id: entry for entry in report.maps}
    maps.update((entry.task_id, entry) for entry in report.loops)
    for page in itertools.chain([first], pages):  # a big run is never all in memory
        if page.tasks:
            table, dropped = task_table(page, times, out.width, report.logs, maps)
            out.print(table)
            left_out += [header for header in dropped if header not in left_out]
        listed += len(page.tasks)
    for line in (
        left_out_line(left_out, out.width),
        _more_line(report.matched - listed, bool(picked)),
    ):
        if line is not None:
            out.print(line)


def _held(task: TaskHistory, times: TimeFormat) -> Cell:
    """How long it was held back and, where its engine said, by what (the last time: its
    type and scope; `cascade why` and --json say who and why)."""
    if not task.blocked_s:
        return "-"
    text = duration(task.blocked_s)
    if task.held_by is not None:
        text += ": " + recorded_holds_brief(task.held_by)  # each text in it made inert
    return Text(text)


def _missing_line(missing: int, dropped: int) -> Text | None:
    """What the history lacks of the run, from the engine's numbers and its own drop count."""
    if missing:
        text = f"missing: {counted(missing, 'event')} the engine numbered never reached the history"
        if dropped:
            text += f" (the engine itself dropped {dropped:,})"
        return Text(text + "; the tasks below may lack states", style="yellow")
    if dropped:
        return Text(f"missing: the engine dropped {counted(dropped, 'event')}", style="yellow")
    return None
