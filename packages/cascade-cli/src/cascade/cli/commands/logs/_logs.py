"""`cascade logs`' work: the recorded lines from the history, and with -f the live ones from
the broker (imported when the command runs: its --help needs none of it)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from typing import TYPE_CHECKING, Any

import typer

from cascade.control.run_ids import Recorded, checked_prefix, is_full, short_id
from cascade.interfaces.logs import LogLine
from cascade.reader import SHOWN, Place, Refusals, inert, parse_timestamp

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import CliContext, fail
from ...plumbing._export import Exporter, ExportFormat, export_format
from ...plumbing._history_db import (
    default_history,
    open_history,
    opened_run,
    query,
    since_seconds,
)
from ...plumbing._run_lookup import no_run_named, recorded_run_ids, run_named
from ...rendering._log_text import (
    batches_missing_note,
    line_fields,
    lost_note,
    parse_level,
    recorded_line,
)
from ...rendering._plural import counted
from ._log_follow import Followed, LogPrinter, follow_logs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cascade.history import History, RecordedLogLine

__all__ = ["LOG_COLUMNS", "PAGE", "following_line", "print_logs"]

PAGE = 1000
"""Recorded lines read from the history at once."""

_SOURCES_SAID = 5  # sources whose refused batches are said one by one (a forger may invent many)

LOG_COLUMNS = (
    "ts",
    "run_id",
    "source",
    "task_id",
    "task_name",
    "attempt",
    "n",
    "level",
    "level_number",
    "logger",
    "message",
    "stream",
    "trace_id",
    "span_id",
)
"""`cascade logs --format`'s columns: the fields of a line's ``--json`` object."""


def _stamp(line: LogLine) -> float | None:
    return parse_timestamp(line.ts)


def _recorded_pages(
    history: History, run_id: str, printer: LogPrinter
) -> Iterator[list[RecordedLogLine]]:
    """The run's recorded lines ``printer`` asks for (task, level, since), a page at a time."""
    after = 0
    while True:
        page = query(
            functools.partial(
                history.log_lines,
                run_id,
                task=printer.task,
                level=printer.level,
                since=printer.since,
                after=after,
                limit=PAGE,
            )
        )
        yield page
        if len(page) < PAGE:
            return
        after = page[-1].id


def _print_recorded(history: History, run_id: str, printer: LogPrinter) -> bool:
    """Print the run's recorded lines asked for, a page at a time; whether the history has
    the run as ended."""
    for page in _recorded_pages(history, run_id, printer):
        printer.lines([(recorded_line(r), r.run_id, r.source) for r in page])
    summary = query(lambda: history.run(run_id, limit=1, counts=False))
    return summary is not None and summary.run.ended_at is not None


def _export_recorded(
    history: History, run_id: str, printer: LogPrinter, export: ExportFormat
) -> None:
    """The run's recorded lines asked for, a page at a time, as rows of ``export``."""
    exporter = Exporter(export, LOG_COLUMNS)
    for page in _recorded_pages(history, run_id, printer):
        exporter.rows(line_fields(recorded_line(r), r.run_id, r.source) for r in page)


def _say_lost(history: History, run_id: str, printer: LogPrinter) -> None:
    """After a run's recorded lines, the lines of the tasks asked for that the history lacks
    (numbered by the engine, neither stored nor said dropped), once per task; then the
    run's batches it lacks (numbered by the engine too), whose lines may be of any task."""
    for task_id, count in query(lambda: history.log_counts(run_id)).items():
        if count.lost and printer.of_task(task_id, count.task_name):
            printer.note(lost_note(count.task_name, count.lost))
    batches = query(lambda: history.log_batches(run_id))
    if batches is not None and batches.missing:
        printer.note(batches_missing_note(batches.missing))


def _live_history(db: str | None) -> History | None:
    """The history ``-f`` reads first: ``--db``'s, else the default one if there is one."""
    if db is None:
        default = default_history()
        if default is None or not default.exists:
            return None
    return open_history("logs", db)


def _task_known(history: History, run_id: str, task: str) -> bool:
    """Whether the run has a task ``task`` names: its id, or a name or glob it matches."""
    if query(lambda: history.count_tasks(run_id, name_glob=task)):
        return True
    return query(
        lambda: any(t.task_id == task for page in history.run_pages(run_id) for t in page.tasks)
    )


def _say_nothing_logged(history: History, run_id: str, printer: LogPrinter) -> None:
    """After a run's recorded lines, when none was printed: a task the run does not have
    ends the command (exit 1); else one line on stderr says nothing was logged."""
    task, shown = printer.task, short_id(run_id)
    if task is not None and not _task_known(history, run_id, task):
        raise fail(
            f"the history at {history.location} has no task {task!r} of run {shown} (neither "
            f"its id nor a name it matches); `cascade run {shown}` lists those it has"
        )
    of = f"task {task!r} of run {shown}" if task is not None else f"run {shown}"
    picked = " at that --level" if printer.level else ""
    picked += " within that --since" if printer.since is not None else ""
    typer.echo(f"cascade: no line logged by {of}{picked} in {history.location}", err=True)


def print_logs(
    ctx: typer.Context,
    run_id: str,
    task: str | None,
    follow: bool,
    db: str | None,
    level: str | None,
    since: str | None,
    json_output: bool,
    export: ExportFormat | None,
    broker: BrokerOptions,
    place: Place | None = None,
) -> None:
    """`cascade logs` with its arguments, as :func:`~._command.logs` says it."""
    export = export_format(export, json_output)
    if export is not None and follow:
        raise typer.BadParameter(
            "exports the recorded lines: without -f (-f --json streams the live ones)",
            param_hint="'--format'",
        )
    printer = LogPrinter(
        task=task,
        level=parse_level(level),
        since=since_seconds(since),
        as_json=json_output,
        notes=sys.stderr if json_output or export else sys.stdout,
    )
    if not follow:
        opened, found = opened_run("logs", db, run_id)
        try:
            if export is not None:
                _export_recorded(opened, found, printer, export)
            else:
                _print_recorded(opened, found, printer)
            _say_lost(opened, found, printer)
            if not printer.shown:
                _say_nothing_logged(opened, found, printer)
        finally:
            opened.close()
        return
    wanted = checked_prefix(run_id)
    recorded_ids = Recorded() if is_full(wanted) else recorded_run_ids(db, wanted)
    history = _live_history(db)

    async def job(connector: Any) -> str | None:
        found = await run_named(connector, wanted, recorded_ids, broker.timeout, place)
        if found is None:
            return None

        async def recorded() -> None:
            if history is not None:
                ended = await asyncio.to_thread(_print_recorded, history, found, printer)
                if ended:
                    raise _Ended

        def following() -> None:
            typer.echo(f"cascade: {following_line(found, broker.address)}", err=True)

        with contextlib.suppress(_Ended):
            followed = await follow_logs(
                connector, found, printer, recorded, _stamp, following=following, place=place
            )
            for line in _left_out(followed, found, printer):
                typer.echo(f"cascade: {line}", err=True)
        return found

    waiting_for = f"the log lines of run {short_id(wanted)} and its end (Ctrl-C ends)"
    try:
        with contextlib.suppress(KeyboardInterrupt):
            followed = CliContext.of(ctx).run(broker, job, waiting_for=waiting_for)
            if followed is None:
                raise no_run_named(wanted, recorded_ids, broker.timeout)
    finally:
        if history is not None:
            history.close()


def following_line(run_id: str, address: str) -> str:
    """What `cascade logs -f` says on stderr once it is subscribed to ``run_id``'s lines on the
    broker at ``address``: from then on, every line its tasks log reaches it."""
    return f"following the log lines of run {short_id(run_id)} on {address} (Ctrl-C ends)"


class _Ended(Exception):
    """The history has the run as ended: its recorded lines are all there will be.

    No error (not a :class:`~cascade.interfaces.CascadeError`): it stops following the live
    lines, and never leaves this module."""


def _left_out(followed: Followed, run_id: str, printer: LogPrinter) -> list[str]:
    """What the live lines lack, said on stderr at the end: the run's lines never received
    (its engine's count against what was heard), batches missed, refused (by the source they
    claim and why, as `cascade watch` says them), let go, ignored."""
    said = followed.logs
    lines = []
    unreceived = followed.unreceived(run_id, printer.printed)
    if unreceived:
        asked = printer.task is not None or printer.level or printer.since is not None
        of = f"{unreceived:,} of the run's {counted(followed.logged or 0, 'log line')}"
        lines.append(
            f"{of} (its engine's count) never reached this command: logged before it "
            "listened, with no history that has them"
            + (" (or, from the history, not of the tasks and levels asked for)" if asked else "")
            + "; `cascade record` keeps a run's lines from its start for `cascade logs RUN`"
        )
    missed = said.missed_batches(run_id)
    if missed:
        lines.append(f"missed {missed:,} batches of log lines")
    lines.extend(_refused(said.refusals, ("batch", "batches"), "of log lines"))
    lines.extend(_refused(followed.telemetry, ("message", "messages"), "of the run's telemetry"))
    if followed.let_go:
        let_go = counted(followed.let_go, "batch", "batches")
        lines.append(
            f"let go {let_go} of log lines heard before the run's engine was known (more than "
            "could wait)"
        )
    if said.oversized or said.rejected:
        lines.append(f"ignored {said.oversized + said.rejected:,} malformed or oversized batches")
    return lines


def _refused(refusals: Refusals, unit: tuple[str, str], of: str) -> list[str]:
    """``refusals`` by the source claimed and why, as `cascade watch` says them, the sources
    beyond :data:`_SOURCES_SAID` summed."""
    ranked = sorted(refusals.by_source, key=lambda source: (-refusals.of(source), source))
    lines = [
        f"refused {counted(refusals.of(source), *unit)} {of} claiming "
        f"{inert(source, SHOWN['source'])}: {refusals.describe(source)}"
        for source in ranked[:_SOURCES_SAID]
    ]
    if len(ranked) > _SOURCES_SAID:
        rest = sum(refusals.of(source) for source in ranked[_SOURCES_SAID:])
        others = counted(len(ranked) - _SOURCES_SAID, "other source")
        lines.append(f"refused {counted(rest, *unit)} {of} from {others}")
    return lines
