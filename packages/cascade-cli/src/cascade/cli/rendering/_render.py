"""Rich renderings of a ReaderModel: the live view of `cascade watch` and `cascade status`.

Every absolute time on one screen is in one time zone, the local one (set
``TZ=UTC`` for UTC), and the screen says which. Every text that comes from a
message is shown as plain text, never parsed as markup, with the characters a
terminal acts on escaped and its length bounded (:func:`~._inert.inert`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Container
from datetime import tzinfo

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cascade.control.run_ids import SHORT_ID, short_id
from cascade.interfaces import Constraint
from cascade.interfaces.summaries import EngineSummary
from cascade.reader import (
    ENDED_FOLD_AFTER,
    LAST_TIMESTAMP,
    SHOWN,
    CarriedOn,
    EngineView,
    ReaderModel,
    RunView,
    TaskView,
    carried_on,
    inert,
    silence_line,
    stranded_runs,
)

from ._decisions_text import decisions_text
from ._fleet_rank import needs_a_look
from ._holds_text import holds_text
from ._loop_iterations import loop_of, number_of
from ._map_items import map_of
from ._plural import counted
from ._summary_text import fleet_line, summary_text
from ._times import TimeFormat, duration

__all__ = [
    "TimeFormat",
    "connection_line",
    "duration",
    "constraints_table",
    "engine_status_text",
    "engines_table",
    "footer_line",
    "ignored_lines",
    "issued_text",
    "live_names",
    "lost_text",
    "names_text",
    "render_status",
    "render_watch",
    "runs_table",
    "STATE_STYLES",
]

STATE_STYLES = {
    "RUNNING": "cyan",
    "COMPLETED": "green",
    "FAILED": "red",
    "SKIPPED": "yellow",
    "BLOCKED": "magenta",
    "QUEUED": "blue",
    "HELD": "bold red",
    "RETRYING": "yellow",
    "CANCELLED": "bright_black",
}
_RUN_STYLES = {
    "Running": "cyan",
    "Succeeded": "green",
    "Failed": "red",
    "Cancelled": "yellow",
    "Lost": "magenta",
}
_IN_FLIGHT = {"RUNNING": "in flight", "RETRYING": "in flight"}  # a lost run's: nothing runs
_ACTIVE_SHOWN = 8
_WAITING = ("BLOCKED", "HELD", "QUEUED")  # a task whose engine says what holds it
_NONE = Text("none", style="dim")  # the row of a table with nothing in it
_FAILED_SHOWN = 5
_NAMES_SHOWN = 3  # the live runs' names an engine's summary cell shows
STATUS_ENGINES_SHOWN = 200
"""Engines `cascade status` lists at most (a table of thousands takes seconds to lay out)."""


def _expiry(constraint: Constraint, times: TimeFormat) -> Text:
    expires = constraint.expires_at
    if expires is None:
        return Text("never")
    if expires > LAST_TIMESTAMP:  # docs/protocol.md: treated as no expiry by every reader
        return Text("never (beyond year 9999)")
    ends = "resumes" if constraint.type == "pause" else "ends"
    return Text(f"{ends} {times.at(expires)} (in {duration(expires - times.now)})")


def issued_text(constraint: Constraint, times: TimeFormat) -> str:
    """``by alice 14:02:11 "warehouse maintenance"``: who set it, when and why, as far as
    its payload says (``-`` when it says nothing; writers before these fields)."""
    parts = []
    if isinstance(constraint.issued_by, str):
        parts.append(f"by {inert(constraint.issued_by, SHOWN['source'])}")
    if isinstance(constraint.issued_at, float):
        parts.append(times.at(constraint.issued_at))
    if isinstance(constraint.reason, str):
        parts.append(f'"{inert(constraint.reason, SHOWN["reason"])}"')
    return " ".join(parts) or "-"


def _params(constraint: Constraint) -> Text:
    shown = ", ".join(f"{key}={value}" for key, value in constraint.params.items())
    return Text(inert(shown, SHOWN["params"]) or "-")


def _progress(run: RunView) -> tuple[ProgressBar, str]:
    done = run.finished_tasks
    total = run.total_tasks
    if total is None:  # a pulsing bar rather than one that would have to go back
        return ProgressBar(total=None, width=20), f"{done}/?"
    progress = run.progress or 0.0
    return ProgressBar(total=1.0, completed=progress, width=20), f"{done}/{total}"


def _reused(run: RunView, state: str) -> str:
    """Of the run's completed tasks, those that took a result instead of running: `` (3
    cached, 2 reused)``; ``""`` for another state, or none."""
    reuses = run.reuses() if state == "COMPLETED" else None
    if not reuses:
        return ""
    return f" ({', '.join(f'{reuses[how]} {how}' for how in ('cached', 'reused') if reuses[how])})"


def _status_text(run: RunView) -> Text:
    """A run's status in its colour and, on a line of its own, the decisions people took on
    its held tasks, as the history's lists say them (a run that succeeded by a skip is not a
    run that succeeded)."""
    said = Text(run.status, style=_RUN_STYLES.get(run.status, ""))
    decided = decisions_text(run.decisions(), run.decisions_others)
    if decided:
        said.append(f"\n{decided}", style="yellow")
    return said


def _said(state: str, run: RunView) -> str:
    """A task's state as a run's rows say it: a lost run's running tasks were in flight when
    its engine died (nothing runs them now)."""
    return _IN_FLIGHT.get(state, state.lower()) if run.lost else state.lower()


def lost_text(run: RunView, times: TimeFormat) -> Text:
    """``lost at 14:02:11 when its engine srv-1 went offline; carried on as 9f3c2a17b0d4 at
    srv-2`` (or ``; not carried on (yet)``) for a lost run."""
    at = f" at {times.at(run.lost_at)}" if run.lost_at is not None else ""
    said = f"lost{at} when its engine {inert(run.source, SHOWN['source'])} went offline; "
    if run.carried_on_as is None:
        said += "not carried on (yet)"
    else:
        carried = inert(short_id(run.carried_on_as), SHORT_ID)
        said += f"carried on as {carried} at {inert(run.carried_on_by or '?', SHOWN['source'])}"
    return Text(said, style="magenta")


def _run_rows(run: RunView, times: TimeFormat, table: Table, partial: str | None) -> None:
    counts = run.counts()
    summary = Text(" ").join(
        Text(f"{_said(state, run)} {counts[state]}{_reused(run, state)}", style=style)
        for state, style in STATE_STYLES.items()
        if counts[state]
    )
    now = run.lost_at if run.lost_at is not None else times.now  # a lost run's clock stopped
    bar, done = _progress(run)
    table.add_row(
        Text(inert(short_id(run.run_id), SHORT_ID), style="bold"),
        Text(inert(run.name, SHOWN["name"])) if run.name is not None else Text("-", style="dim"),
        _status_text(run),
        bar,
        done,
        summary,
    )
    if run.lost:
        table.add_row("", "", "", "", "", lost_text(run, times))
    if partial is not None:  # what this view lacks of the run, until its engine answers
        table.add_row("", "", "", "", "", Text(partial, style="yellow"))
    active, latest = _loops_folded(run.active_tasks(), run.tasks)
    for group in _alike(active, times)[:_ACTIVE_SHOWN]:
        task, held = group[0]
        style = STATE_STYLES.get(task.state, "")
        parent = map_of(task.task_id) if len(group) > 1 else None
        iteration = latest.get(task.task_id)
        if iteration is not None:  # a loop and its iteration under way: one row
            name = Text(inert(task.name, SHOWN["name"]), style=style)
            label = Text(f"  {_said(task.state, run)} ", style=style) + name
            said = f": iteration {number_of(iteration.task_id)} {_said(iteration.state, run)}"
            label.append(said, style=STATE_STYLES.get(iteration.state, ""))
            if iteration.state in _WAITING and iteration.held_by is not None:
                held = holds_text(iteration.held_by, times)
        elif parent is not None:  # a map's items in one state, held alike: one row
            label = Text(f"  {counted(len(group), 'item')} {_said(task.state, run)} ", style=style)
            label.append(f"(map {inert(parent, SHOWN['name'])})", style=style)
        elif len(group) == 1:
            name = Text(inert(task.name, SHOWN["name"]), style=style)
            label = Text(f"  {_said(task.state, run)} ", style=style) + name
        else:  # one row and one reason for the tasks the same thing holds
            names = list(dict.fromkeys(inert(t.name, SHOWN["name"]) for t, _ in group))
            shown = ", ".join(names[:_NAMES_SHOWN]) + (", …" if len(names) > _NAMES_SHOWN else "")
            label = Text(f"  {counted(len(group), 'task')} {_said(task.state, run)} ", style=style)
            label.append(f"({shown})", style=style)
        table.add_row("", "", "", label, duration(now - task.since), Text(held, style=style))
    failed = run.failed_tasks()
    for alike in _by_map(failed, run.tasks)[:_FAILED_SHOWN]:
        first = alike[0]
        label = Text("  failed ", style="red") + Text(inert(first.name, SHOWN["name"]), style="red")
        looped = [t for t in alike if loop_of(t.task_id, run.tasks) is not None]
        if looped:  # a loop and its iteration that failed it: one row
            said = f" (its iteration {number_of(looped[-1].task_id)})"
            label.append(said, style="red")
        elif len(alike) > 1:
            label.append(f" ({counted(len(alike), 'item')} of its map)", style="red")
        table.add_row("", "", "", label, "", Text(inert(first.error, SHOWN["error"]), style="red"))
    if run.error and not failed:
        table.add_row("", "", "", "", "", Text(inert(run.error, SHOWN["error"]), style="red"))
    if run.trace_id is not None:  # 32 hex digits, as decoded: nothing to escape
        table.add_row("", "", "", "", "", Text(f"trace {run.trace_id}", style="dim"))
    rerun_of = None if run.origin is None else run.origin.rerun_of
    if rerun_of is not None:
        said = f"rerun of {inert(short_id(rerun_of), SHORT_ID)}"
        table.add_row("", "", "", "", "", Text(said, style="dim"))


def _alike(tasks: list[TaskView], times: TimeFormat) -> list[list[tuple[TaskView, str]]]:
    """The active tasks (the longest in their state first), each with what holds it as its
    engine said (``""``: nothing, or running), those in one state held by the same words in
    one group where the first of them is, and so a map's items in one state held alike (its
    items running: one group)."""
    groups: list[list[tuple[TaskView, str]]] = []
    by_reason: dict[tuple[str, str, str | None], list[tuple[TaskView, str]]] = {}
    for task in tasks:
        held = ""  # beside a blocked or held task: what holds it, as its engine said
        if task.state in _WAITING and task.held_by is not None:
            held = holds_text(task.held_by, times)
        if task.state == "HELD" and task.error:
            held += f": {inert(task.error, SHOWN['error'])}"
        parent = map_of(task.task_id)  # a map's items in one state, held alike: one group
        key = (task.state, held, parent)
        if (held or parent is not None) and key in by_reason:
            by_reason[key].append((task, held))
            continue
        groups.append([(task, held)])
        if held or parent is not None:
            by_reason[key] = groups[-1]
    return groups


def _loops_folded(
    tasks: list[TaskView], run_tasks: Container[str]
) -> tuple[list[TaskView], dict[str, TaskView]]:
    """The active ``tasks`` but loops' iterations (``run_tasks``: the run's task ids), and per
    loop whose own task is among them its latest active iteration, shown in its row."""
    kept: list[TaskView] = []
    latest: dict[str, TaskView] = {}
    for task in tasks:
        loop = loop_of(task.task_id, run_tasks)
        if loop is None:
            kept.append(task)
        elif loop not in latest or number_of(task.task_id) > number_of(latest[loop].task_id):
            latest[loop] = task
    own = {task.task_id for task in kept}
    kept += [task for loop, task in latest.items() if loop not in own]  # its loop ended
    return kept, {loop: task for loop, task in latest.items() if loop in own}


def _by_map(tasks: list[TaskView], run_tasks: Container[str] = ()) -> list[list[TaskView]]:
    """``tasks`` in their order, a map's items in one group where the first of them is, a
    loop's own task and its iterations (``run_tasks``: the run's task ids) in one group."""
    groups: list[list[TaskView]] = []
    by_parent: dict[tuple[str, str], list[TaskView]] = {}
    for task in tasks:
        parent = map_of(task.task_id)
        loop = loop_of(task.task_id, run_tasks) if parent is None else None
        key = ("map", parent) if parent is not None else ("loop", loop or task.task_id)
        if key in by_parent:
            by_parent[key].append(task)
            continue
        groups.append([task])
        by_parent[key] = groups[-1]
    return groups


def runs_table(state: ReaderModel, times: TimeFormat) -> Table:
    """Each run with its name, status, progress and counts by state, its active tasks and
    failures (and the run it reruns)."""
    table = Table(title="Runs", title_justify="left", expand=True)
    for column in ("run", "name", "status", "progress", "done", "tasks"):
        table.add_column(column)
    for run in state.runs.values():
        _run_rows(run, times, table, state.partial(run))
    if not state.runs:
        table.add_row("-", "", "waiting for telemetry", "", "", "")
    return table


def live_names(summary: EngineSummary) -> list[str]:
    """The names of the live runs an engine's summary lists, each once, in its order."""
    return list(dict.fromkeys(r.name for r in summary.listed if r.status == "Running" and r.name))


def names_text(summary: EngineSummary) -> str:
    """``nightly, etl and 2 more``: the names of the live runs an engine's summary lists
    (the engine's text, made inert); ``""`` without any."""
    names = live_names(summary)
    shown = ", ".join(inert(name, SHOWN["name"]) for name in names[:_NAMES_SHOWN])
    more = f" and {len(names) - _NAMES_SHOWN:,} more" if len(names) > _NAMES_SHOWN else ""
    return shown + more


def engine_status_text(engine: EngineView) -> Text:
    """An engine's presence (and its reason), or that two processes share its source id."""
    status = engine.status
    if status is None:
        return Text("unknown (telemetry only)", style="yellow")
    reason = inert(status.reason, SHOWN["reason"]) if status.reason else ""
    label = status.status + (f" ({reason})" if reason else "")
    if engine.conflict:
        label += f" - CONFLICT: source id shared with session {engine.conflict_session}"
        return Text(label, style="bold yellow")
    return Text(label, style="green" if status.status == "online" else "red")


def _summary_cell(engine: EngineView, carried: CarriedOn) -> Text:
    said = summary_text(engine, carried)
    if engine.summary is None:
        return Text(said, style="dim")
    if not engine.online:  # what it ran is stranded or carried on: nothing is live there
        return Text(said, style="red" if stranded_runs(engine, carried)[0] else "")
    names = names_text(engine.summary)
    if names:
        said += f" · live: {names}"
    return Text(said)


def engines_table(
    state: ReaderModel,
    times: TimeFormat,
    offline_max_age: float | None = None,
    *,
    summaries: bool = False,
    most: int | None = None,
    command: str = "cascade watch",
    sources: str | None = None,
) -> Table:
    """The sources with their presence, session and when they were last heard from, and with
    ``summaries`` what each one's summary says (its live runs, tasks by state, events/s).

    Offline sources last heard from more than ``offline_max_age`` seconds ago
    are left out, and the table's caption says how many; so are those that ended cleanly
    more than a minute ago (:meth:`~cascade.reader.ReaderModel.engine_rows`),
    counted in a line that says how to list them (``command --all``). Beyond ``most`` engines,
    only the
    ``most`` that need a look first are listed (:func:`~._fleet_rank.needs_a_look`), and the
    caption says so. ``sources``: only the sources that match this glob.
    """
    fold = ENDED_FOLD_AFTER if offline_max_age is not None else None
    rows = state.engine_rows(offline_max_age, fold, times.now)
    shown, hidden = rows.shown, rows.hidden
    if sources is not None:
        shown = [e for e in shown if fnmatch.fnmatchcase(e.source, sources)]
    said = []
    if rows.folded:
        ended = len(rows.folded)
        said.append(
            f"{ended:,} {'engine' if ended == 1 else 'engines'} ended cleanly in the last "
            f"{_span(offline_max_age or 0)} — `{command} --all` to list"
        )
    if hidden:
        said.append(
            f"{hidden} offline for more than {duration(offline_max_age or 0)} hidden "
            "(--all shows them)"
        )
    if most is not None and len(shown) > most:
        said.append(
            f"{counted(len(shown) - most, 'more engine')} not listed: the {most:,} shown are those "
            "with a conflict, stranded runs, the most live runs and failures (--json lists all)"
        )
        shown = needs_a_look(shown, most)
    caption = "; ".join(said) or None
    table = Table(title="Engines", title_justify="left", expand=True, caption=caption)
    carried = carried_on(state.engines.values()) if summaries else {}
    columns = ("source", "status", "session", "last seen", *(("summary",) if summaries else ()))
    for column in columns:
        table.add_column(column)
    for engine in shown:
        session = engine.status.session if engine.status else None
        cells: list[RenderableType] = [
            Text(inert(engine.source, SHOWN["source"])),
            engine_status_text(engine),
            "-" if session is None else str(session),
            times.ago(engine.last_seen),
        ]
        if summaries:
            cells.append(_summary_cell(engine, carried))
        table.add_row(*cells)
    if not shown:
        table.add_row(_NONE, *[""] * (len(columns) - 1))
    return table


def _span(seconds: float) -> str:
    """``hour`` for 3600 s, else the duration (``30m00s``)."""
    return "hour" if round(seconds) == 3600 else duration(seconds)


def constraints_table(state: ReaderModel, times: TimeFormat) -> Table:
    """The constraints in force, with scope, type, parameters, who set them, when and why,
    and until when."""
    table = Table(title="Constraints", title_justify="left", expand=True)
    for column in ("scope", "type", "params", "issued", "until"):
        table.add_column(column)
    for _, constraint in state.active_constraints():
        table.add_row(
            Text(inert(constraint.scope, SHOWN["scope"])),
            Text(constraint.type),
            _params(constraint),
            Text(issued_text(constraint, times)),
            _expiry(constraint, times),
        )
    if not table.row_count:
        table.add_row(_NONE, "", "", "", "")
    return table


def connection_line(state: ReaderModel, times: TimeFormat, broker: str = "the broker") -> Text:
    """``connected to HOST:PORT``, or since when the connection is down and that it is retried."""
    connection = state.connection
    if connection.connected:
        return Text(f"connected to {broker}", style="green")
    since = connection.since if connection.since is not None else times.now
    return Text(
        f"DISCONNECTED from {broker} since {times.at(since)} ({duration(times.now - since)}); "
        "reconnecting — what follows may be out of date",
        style="bold red",
    )


def ignored_lines(state: ReaderModel) -> list[Text]:
    """``3 malformed messages ignored, 1 oversized messages ignored``, if any."""
    said = [
        f"{counted(count, what + ' message')} ignored"
        for count, what in ((state.rejected, "malformed"), (state.oversized, "oversized"))
        if count
    ]
    return [Text(", ".join(said), style="yellow")] if said else []


MISSED_SOURCES_SHOWN = 5


def refused_lines(state: ReaderModel) -> list[Text]:
    """``refused 4 messages claiming attacker: 3 foreign source, 1 conflict`` for each source
    this view refused messages from (what no engine of their run can have sent)."""
    refusals = state.refusals
    ranked = sorted(refusals.by_source, key=lambda source: (-refusals.of(source), source))
    lines = [
        Text(
            f"refused {counted(refusals.of(source), 'message')} claiming "
            f"{inert(source, SHOWN['source'])}: {refusals.describe(source)}",
            style="red",
        )
        for source in ranked[:MISSED_SOURCES_SHOWN]
    ]
    if len(ranked) > MISSED_SOURCES_SHOWN:
        rest = ranked[MISSED_SOURCES_SHOWN:]
        count = sum(refusals.of(source) for source in rest)
        said = f"refused {counted(count, 'message')} from {counted(len(rest), 'other source')}"
        lines.append(Text(said, "red"))
    return lines


def missed_lines(state: ReaderModel, times: TimeFormat) -> list[Text]:
    """``missed 1,204 events from host-17 since 14:02:11`` for each source this view missed from."""
    missed = sorted(
        ((gaps.missed, source, gaps.since) for source, gaps in state.gaps.by_source.items()),
        key=lambda item: (-item[0], item[1]),
    )
    missed = [item for item in missed if item[0] > 0]
    lines = [
        Text(
            f"missed {counted(count, 'event')} from {inert(source, SHOWN['source'])}"
            + (f" since {times.at(since)}" if since is not None else ""),
            style="yellow",
        )
        for count, source, since in missed[:MISSED_SOURCES_SHOWN]
    ]
    if len(missed) > MISSED_SOURCES_SHOWN:
        rest = missed[MISSED_SOURCES_SHOWN:]
        lines.append(
            Text(
                f"missed {counted(sum(c for c, _, _ in rest), 'event')} from "
                f"{counted(len(rest), 'other source')}",
                style="yellow",
            )
        )
    return lines


def silence_lines(state: ReaderModel) -> list[Text]:
    """One line for each engine whose telemetry does not reach this view, naming the likely
    cause (:meth:`~cascade.reader.ReaderModel.silent_engines`)."""
    return [
        Text(inert(silence_line(engine), SHOWN["reason"] * 3), style="bold yellow")
        for engine in state.silent_engines()[:MISSED_SOURCES_SHOWN]
    ]


def footer_line(state: ReaderModel, times: TimeFormat, broker: str | None) -> Text:
    """The live views' last line: the connection (with ``broker``), the time and its zone."""
    parts = [connection_line(state, times, broker)] if broker is not None else []
    parts.append(Text(f"updated {times.at(times.now)} · times in {times.zone}", style="dim"))
    return Text(" · ").join(parts)


def render_watch(
    state: ReaderModel,
    *,
    offline_max_age: float | None = None,
    broker: str | None = None,
    tz: tzinfo | None = None,
) -> RenderableType:
    """The whole live view: runs, engines, constraints, then the connection and the time."""
    times = TimeFormat(state.clock(), tz)
    parts: list[RenderableType] = [
        runs_table(state, times),
        engines_table(state, times, offline_max_age),
        constraints_table(state, times),
    ]
    parts.extend(silence_lines(state))
    parts.extend(ignored_lines(state))
    parts.extend(missed_lines(state, times))
    parts.extend(refused_lines(state))
    parts.append(footer_line(state, times, broker))
    return Group(*parts)


def render_status(
    state: ReaderModel,
    *,
    offline_max_age: float | None = None,
    tz: tzinfo | None = None,
    engine: str | None = None,
) -> RenderableType:
    """`cascade status`: what the engines' summaries add up to, the engines (each with its
    summary) and the constraints, and the time zone their times are in."""
    times = TimeFormat(state.clock(), tz)
    parts: list[RenderableType] = [
        Text(fleet_line(state.fleet()), style="bold"),
        engines_table(
            state,
            times,
            offline_max_age,
            summaries=True,
            most=STATUS_ENGINES_SHOWN,
            command="cascade status",
            sources=engine,
        ),
        constraints_table(state, times),
    ]
    parts.extend(ignored_lines(state))
    parts.extend(refused_lines(state))  # a constraint not its topic's among them
    parts.append(Text(f"as of {times.at(times.now)} · times in {times.zone}", style="dim"))
    return Group(*parts)
