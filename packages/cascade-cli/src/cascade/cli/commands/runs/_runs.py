"""How the history's runs are shown: styles, task counts, missing and refused notes,
recorders' gaps (`cascade runs`, `cascade run`; the command is :mod:`.commands.runs`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from cascade.control.run_ids import SHORT_ID, short_id
from cascade.reader import SHOWN, inert

from ...plumbing._history_db import cell
from ...rendering._decisions_text import decisions_text
from ...rendering._fit import Cell, Column, fits, fitted
from ...rendering._plural import counted
from ...rendering._render import STATE_STYLES, TimeFormat, duration

if TYPE_CHECKING:
    from rich.table import Table

    from cascade.history import RunSummary, SourceGap

__all__ = [
    "LINE_NOTE",
    "MISSING_NOTE",
    "REFUSED_NOTE",
    "RUN_STYLES",
    "decided_text",
    "filtered",
    "fold_lines",
    "gap_lines",
    "line_text",
    "missing_cell",
    "refused_text",
    "runs_table",
    "schedule_slot",
    "status_text",
    "task_counts",
]

RUN_STYLES = {
    "Running": "cyan",
    "Succeeded": "green",
    "Failed": "red",
    "Cancelled": "yellow",
    "Lost": "magenta",
}


MISSING_NOTE = (
    "missing: events the engine numbered that never reached the history (the recorder was "
    "away, behind or down, or the engine dropped them); cascade run RUN_ID says more"
)
REFUSED_NOTE = (
    "refused: messages about the run that no engine of it can have sent (another source's, "
    "a second one numbered alike, a number out of bounds, a timestamp ahead), stored nowhere; "
    "cascade run RUN_ID says which"
)
_GAP_LINES = 5  # recorders' gap counts shown under the table at most
# The id, status and start are never left out nor cut; the engine and the project go first
# when the terminal is narrow, then the duration, the error, and what was missing or refused.
# An error keeps to one line, cut (cascade run RUN_ID shows it whole): folded, one run's took
# a screen's height.
_COLUMNS = (
    Column("run", whole=True),
    Column("name", rank=5),
    Column("status", whole=True),
    Column("started", whole=True),
    Column("duration", whole=True, rank=3),
    Column("tasks", rank=7),
    Column("project", rank=2),
    Column("source", rank=1),
    Column("error", rank=4, one_line=True),
)
# How the runtime says a run failed (TaskFailedError's text): the task's error comes first in
# the table's one line, the task's id after it.
_TASK_FAILED = re.compile(
    r"TaskFailedError: task '.*?' \((?P<id>[^()]*)\) failed: (?P<error>.*)", re.S
)
_STACKED = Column("tasks", whole=True, rank=7)  # one state and its count a line
_SCHEDULED = Column("scheduled", rank=3)  # a schedule's runs: its name and the slot
# a run and its reruns, one line of work: the first run, each rerun, how each ended and the
# results it reused (a run a line), in place of the rows of its runs
_LINE = Column("line of work", whole=True, rank=8)
LINE_NOTE = (
    "a run and its reruns are one row, the latest listed's (its outcome first), "
    "the line of work beside it; --json lists each run"
)
_MISSING = Column("missing", whole=True, rank=6)
_REFUSED = Column("refused", whole=True, rank=6)


def missing_cell(missing: int | None) -> Text:
    """A run's missing events for a table: the number in yellow, ``-`` when none or unknown."""
    return Text(f"{missing:,}", style="yellow") if missing else Text("-")


def refused_text(refused: dict[str, int]) -> str:
    """A run's refusals in words, most first: ``3 foreign source, 1 conflict``."""
    ranked = sorted(refused.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count:,} {inert(reason, 32)}" for reason, count in ranked)


def gap_lines(gaps: list[SourceGap], times: TimeFormat) -> list[Text]:
    """What recorders found missing of these sources, one line each (the latest first)."""
    lines = [
        Text(
            f"recorder {inert(gap.recorder, SHOWN['source'])} missed "
            f"{counted(gap.missed, 'event')} of {inert(gap.source, SHOWN['source'])} "
            f"(from {times.at(gap.first_at)}, last {times.at(gap.last_at)})",
            style="yellow",
        )
        for gap in gaps[:_GAP_LINES]
    ]
    if len(gaps) > _GAP_LINES:
        lines.append(Text(f"… and {len(gaps) - _GAP_LINES} more (History.gaps())", style="yellow"))
    return lines


def task_counts(counts: dict[str, int], *, stacked: bool = False) -> Text:
    """``completed 4 failed 1``: tasks counted by state, coloured, in a fixed order (one state
    a line when ``stacked``)."""
    parts = [
        Text(f"{state.lower()} {counts[state]:,}", style=style)
        for state, style in STATE_STYLES.items()
        if counts.get(state)
    ]
    return Text("\n" if stacked else " ").join(parts) if parts else Text("-")


def runs_table(found: list[RunSummary], times: TimeFormat, width: int) -> tuple[Table, list[str]]:
    """The runs as a table at most ``width`` wide, and the columns left out to fit it: a
    ``missing`` column when some run lacks events, a ``refused`` one when some had messages
    refused."""
    lacking = any(run.missing_events for run in found)
    lied = any(run.refused for run in found)
    scheduled = any(run.schedule for run in found)
    lined = any(run.line for run in found)

    def rows(stacked: bool) -> list[list[Cell]]:
        return [_run_row(run, times, lacking, lied, scheduled, lined, stacked) for run in found]

    columns = [*_COLUMNS[:3], *([_LINE] if lined else []), *_COLUMNS[3:6]]
    columns += [*([_SCHEDULED] if scheduled else [])]
    columns += [*([_MISSING] if lacking else []), *([_REFUSED] if lied else [])]
    columns += _COLUMNS[6:]
    shown = rows(stacked=False)
    if not fits(columns, shown, width):  # a state and its count kept on a line of their own
        shown = rows(stacked=True)
        columns[6 if lined else 5] = _STACKED
    title = f"Runs (times in {times.zone})"
    return fitted(columns, shown, width, title=title)


def schedule_slot(
    run: RunSummary, times: TimeFormat, *, at: bool = False
) -> tuple[str, str] | None:
    """The schedule that started ``run`` and its slot in ``times``' zone (``Nov 27 02:00``; with
    ``at``, as :meth:`TimeFormat.at` says it), made inert; ``None``: no schedule did."""
    if run.schedule is None:
        return None
    said = run.scheduled_for or ""
    try:
        slot = datetime.fromisoformat(said).timestamp()
    except ValueError:
        shown = inert(said, 32) or "?"
    else:
        shown = times.at(slot) if at else times.short(slot)
    return inert(run.schedule, SHOWN["name"]), shown


def fold_lines(found: list[RunSummary]) -> list[RunSummary]:
    """``found`` (newest first) with the runs of one line of work (a run and its reruns) as
    one: the newest of them, where the first of them was."""
    seen: set[str] = set()
    kept = []
    for run in found:
        root = run.line[0].run_id if run.line else None
        if root is None or root not in seen:
            kept.append(run)
        if root is not None:
            seen.add(root)
    return kept


def line_text(run: RunSummary) -> Text:
    """A run's line of work, a run a line, oldest first: ``first 58a88765cea2 Failed``,
    ``rerun 9c1e0d2f3a4b Succeeded, 4 reused``; ``-`` for a run with none."""
    if not run.line:
        return Text("-", style="dim")
    said = Text()
    for index, link in enumerate(run.line):
        if index:
            said.append("\n")
        said.append("first " if index == 0 else "rerun ")
        said.append(
            inert(short_id(link.run_id), SHOWN["name"]), "bold" if link.run_id == run.run_id else ""
        )
        status = link.status or "not recorded"
        said.append(" ").append(status, RUN_STYLES.get(status, "dim"))
        if link.reused:
            said.append(f", {link.reused:,} reused", "cyan")
    return said


def _run_row(
    run: RunSummary,
    times: TimeFormat,
    lacking: bool,
    lied: bool,
    scheduled: bool,
    lined: bool,
    stacked: bool,
) -> list[Cell]:
    cells: list[Cell] = [
        cell(short_id(run.run_id), SHORT_ID, "bold"),
        cell(run.name, SHOWN["name"]) if run.name is not None else Text("-", style="dim"),
        status_text(run),
        *([line_text(run)] if lined else []),
        times.short(run.started_at),
        duration(run.duration) if run.duration is not None else "-",
        task_counts(run.tasks, stacked=stacked),
    ]
    if scheduled:
        slot = schedule_slot(run, times)
        cells.append(Text("-", style="dim") if slot is None else " ".join(slot))
    if lacking:
        cells.append(missing_cell(run.missing_events))
    if lied:
        cells.append(missing_cell(sum(run.refused.values())))
    return [
        *cells,
        cell(run.project_id, SHOWN["name"]),
        cell(run.source, SHOWN["source"]),
        cell(_error_first(run.error), SHOWN["error"], "red"),
    ]


def status_text(run: RunSummary) -> Text:
    """A run's status in its colour, and on a line of its own the decisions people took on its
    held tasks (``1 skipped by ops-1, 1 completed by ops-2``), which changed what it came to:
    a run that succeeded by a skip is not a run that succeeded."""
    said = Text(run.status, style=RUN_STYLES.get(run.status, ""))
    if run.decisions:
        said.append(f"\n{decided_text(run)}", style="yellow")
    return said


def decided_text(run: RunSummary) -> str:
    """The decisions people took on a run's held tasks, as its engine applied them: ``1
    skipped by ops-1, 1 completed by ops-2`` (``""``: none); names inert."""
    return decisions_text(run.decisions)


def _error_first(error: str | None) -> str | None:
    """A run's error as its table cell starts it: what its first failed task raised, then the
    task (``ValueError: bad row (load-3)``); any other error as it is."""
    said = _TASK_FAILED.fullmatch(error or "")
    return error if said is None else f"{said['error']} ({said['id']})"


def filtered(ctx: typer.Context) -> bool:
    """Whether `cascade runs` was given a filter (then "no runs recorded that match")."""
    return any(
        ctx.params.get(name) is not None
        for name in ("since", "status", "project", "task", "source", "name", "schedule", "trigger")
    )
