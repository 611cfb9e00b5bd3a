"""Rich renderings of a WatchState: the live view of `cascade watch` and `cascade status`."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cascade.interfaces import Constraint

from ._state import RunView, WatchState

__all__ = ["constraints_table", "engines_table", "render_watch", "runs_table"]

_STATE_STYLES = {
    "RUNNING": "cyan",
    "COMPLETED": "green",
    "FAILED": "red",
    "SKIPPED": "yellow",
    "BLOCKED": "magenta",
    "RETRYING": "yellow",
}
_RUN_STYLES = {"Running": "cyan", "Succeeded": "green", "Failed": "red"}


def _ago(then: float, now: float) -> str:
    seconds = max(0.0, now - then)
    return f"{seconds:.1f}s" if seconds < 60 else f"{seconds / 60:.0f}m{seconds % 60:02.0f}s"


def _expiry(constraint: Constraint) -> str:
    if constraint.expires_at is None:
        return "never"
    return datetime.fromtimestamp(constraint.expires_at, timezone.utc).strftime("%H:%M:%S UTC")


def _params(constraint: Constraint) -> str:
    return ", ".join(f"{key}={value}" for key, value in constraint.params.items()) or "-"


def _run_rows(run: RunView, now: float, table: Table) -> None:
    counts = run.counts()
    summary = Text(" ").join(
        Text(f"{state.lower()} {counts[state]}", style=style)
        for state, style in _STATE_STYLES.items()
        if counts[state]
    )
    total = run.total_tasks
    table.add_row(
        Text(run.run_id[:12], style="bold"),
        Text(run.status, style=_RUN_STYLES.get(run.status, "")),
        ProgressBar(total=max(total, 1), completed=run.finished_tasks, width=20),
        f"{run.finished_tasks}/{total}",
        summary,
    )
    running = [t for t in run.tasks.values() if t.state in ("RUNNING", "RETRYING", "BLOCKED")]
    for task in sorted(running, key=lambda t: t.since)[:8]:
        style = _STATE_STYLES[task.state]
        table.add_row("", "", Text(f"  {task.state.lower()} {task.name}", style=style),
                      _ago(task.since, now), "")  # fmt: skip
    for task in [t for t in run.tasks.values() if t.state == "FAILED"][:5]:
        table.add_row("", "", Text(f"  failed {task.name}", style="red"), "",
                      Text(task.error, style="red"))  # fmt: skip
    if run.error and not counts["FAILED"]:
        table.add_row("", "", "", "", Text(run.error, style="red"))


def runs_table(state: WatchState, now: float | None = None) -> Table:
    """Each run with its status, progress and counts by state, its active tasks and failures."""
    now = state.clock() if now is None else now
    table = Table(title="Runs", title_justify="left", expand=True)
    for column in ("run", "status", "progress", "done", "tasks"):
        table.add_column(column)
    for run in state.runs.values():
        _run_rows(run, now, table)
    if not state.runs:
        table.add_row("-", "waiting for telemetry", "", "", "")
    return table


def engines_table(state: WatchState, now: float | None = None) -> Table:
    """Every source with its presence, session and when it was last heard of."""
    now = state.clock() if now is None else now
    table = Table(title="Engines", title_justify="left", expand=True)
    for column in ("source", "status", "session", "last seen"):
        table.add_column(column)
    for engine in sorted(state.engines.values(), key=lambda e: e.source):
        status = engine.status
        label = status.status + (f" ({status.reason})" if status.reason else "")
        style = "green" if status.status == "online" else "red"
        if engine.conflict:
            label += f" - CONFLICT: source id shared with session {engine.conflict_session}"
            style = "bold yellow"
        session = "-" if status.session is None else str(status.session)
        table.add_row(engine.source, Text(label, style=style), session,
                      f"{_ago(engine.last_seen, now)} ago")  # fmt: skip
    return table


def constraints_table(state: WatchState) -> Table:
    """The constraints in force, with scope, type, parameters and expiry."""
    table = Table(title="Constraints", title_justify="left", expand=True)
    for column in ("scope", "type", "params", "expires"):
        table.add_column(column)
    for _, constraint in state.active_constraints():
        table.add_row(constraint.scope, constraint.type, _params(constraint), _expiry(constraint))
    return table


def render_watch(state: WatchState) -> RenderableType:
    """The whole live view: runs, then engines, then constraints."""
    now = state.clock()
    parts: list[RenderableType] = [runs_table(state, now), engines_table(state, now)]
    parts.append(constraints_table(state))
    if state.rejected:
        parts.append(Text(f"{state.rejected} malformed messages ignored", style="yellow"))
    parts.append(Text(time.strftime("updated %H:%M:%S"), style="dim"))
    return Group(*parts)
