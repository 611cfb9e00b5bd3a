"""`cascade schedules`: each served schedule, its next slots, its last slot and that slot's run,
paused or not, from its servers' announcements."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer

from cascade.control import Controller
from cascade.control.schedules import ScheduleView
from cascade.reader import SHOWN, inert

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext
from ...plumbing._view_options import Json
from ...rendering._fit import Column, fitted, print_fitted

__all__ = ["schedules"]

_COLUMNS = (
    Column("SCHEDULE", whole=True),
    Column("WORKFLOW", whole=True),
    Column("WHEN", fold=16),
    Column("NEXT", whole=True),
    Column("LAST", rank=2),
    Column("STATE", rank=1),
    Column("SERVERS", rank=3),
)


def _when(view: ScheduleView) -> str:
    said = view.schedule
    if said.cron:
        return inert(f"{said.cron} {said.tz}", SHOWN["reason"])
    return f"every {said.every:g}s"


def _slot(iso: str) -> str:
    """A slot as the table shows it: UTC, to the second."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _state(view: ScheduleView) -> str:
    pause = view.pause
    if pause is None:
        state = "active"
    else:
        state = "paused"
        if pause.paused_by:
            state += f" by {inert(pause.paused_by, SHOWN['source'])}"
        if pause.paused_until:
            until = datetime.fromtimestamp(pause.paused_until, timezone.utc)
            state += f" until {until:%Y-%m-%d %H:%M:%SZ}"
        if pause.paused_reason:
            state += f": {inert(pause.paused_reason, SHOWN['reason'])}"
    if view.skipped:
        state += f"\n{view.skipped} skipped"
    return state


def _rows(found: list[ScheduleView]) -> list[list[str]]:
    rows = []
    for view in found:
        last = "-"
        if view.last_slot:
            last = f"{_slot(view.last_slot)} {view.last_run[:12]}"
        elif view.last:
            last = _slot(view.last)
        rows.append(
            [
                inert(view.name, SHOWN["name"]),
                inert(view.schedule.workflow, SHOWN["name"]),
                _when(view),
                _slot(view.next) if view.next else "-",
                last,
                _state(view),
                ", ".join(inert(s, SHOWN["source"]) for s in view.servers) or "none online",
            ]
        )
    return rows


@broker_options
def schedules(
    ctx: typer.Context,
    json_output: Json = False,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """The served schedules: next and last slot, its run, paused or not.

    The served schedules, each once, from its servers' announcements: when it fires, its next
    slot (UTC; `--json` lists the ones after it too), its last slot and the run that slot
    started, paused or not (by whom, until when and why), the slots skipped, and the servers
    online that fire it.

    `cascade pause schedule:NAME` pauses one. Example: cascade schedules --json
    """
    found = CliContext.of(ctx).run(
        broker,
        lambda c: Controller(c, timeout=broker.timeout).schedules(),
        if_silent="no serving process's announcement (is it the engines' broker?)",
    )
    if json_output:
        out = {"schedules": [view.as_json() for view in found]}
        typer.echo(json.dumps(out, ensure_ascii=True))
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print("no schedule is served (no announcement names one)", highlight=False)
        return
    print_fitted(console, *fitted(_COLUMNS, _rows(found), console.width, title="Schedules"))
