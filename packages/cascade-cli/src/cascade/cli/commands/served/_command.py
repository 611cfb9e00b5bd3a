"""`cascade served`: who serves which workflows, with their params and load, and their
triggers with their last event and the runs they started."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import typer

from cascade.control import Controller, Served
from cascade.interfaces.serving import ServedWorkflow, WorkflowParam
from cascade.reader import SHOWN, inert

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext
from ...plumbing._view_options import Json
from ...rendering._fit import Column, fitted, print_fitted

__all__ = ["served"]

_COLUMNS = (
    Column("WORKFLOW", whole=True),
    Column("PARAMS", fold=16),
    Column("SOURCE", whole=True),
    Column("STATE", whole=True),
    Column("LOAD", whole=True, rank=2),
    Column("DOC", rank=1),
)


def _param(param: WorkflowParam) -> str:
    """``name: type = default``, and its description on the line under it, indented."""
    text = param.name + (f": {param.annotation}" if param.annotation else "")
    if not param.required:
        text += f" = {json.dumps(param.default, ensure_ascii=False)}"
    shown = inert(text, SHOWN["params"])
    if param.description:
        shown += "\n  " + inert(param.description, SHOWN["reason"])
    return shown


_TRIGGER_COLUMNS = (
    Column("TRIGGER", whole=True),
    Column("ON", fold=12),
    Column("WORKFLOW", whole=True),
    Column("STARTED", fold=8),
    Column("SOURCE", whole=True),
    Column("STATE", fold=8),
    Column("LAST EVENT", rank=1),
)


def _trigger_rows(found: list[Served]) -> list[list[str]]:
    """Each trigger of each server: what it starts on, paused or not, the events it heard,
    the runs it started there, and its last event."""
    rows = []
    for server in found:
        for trigger in server.announcement.triggers:
            state = "online" if server.online else "offline"
            if trigger.paused:
                by = inert(trigger.paused_by, SHOWN["source"])
                state += ", paused" + (f" by {by}" if by else "")
            started = f"{trigger.started} of {trigger.events} events"
            if trigger.waiting:
                started += f", {trigger.waiting} waiting"
            if trigger.dropped:
                started += f", {trigger.dropped} dropped"
            rows.append(
                [
                    inert(trigger.name, SHOWN["source"]),
                    f"{trigger.kind}: {inert(trigger.on, SHOWN['reason'])}",
                    inert(trigger.workflow, SHOWN["source"]),
                    started,
                    inert(server.source, SHOWN["source"]),
                    state,
                    inert(trigger.last_event, SHOWN["reason"]) or "-",
                ]
            )
    return sorted(rows, key=lambda row: (row[0], row[4]))


def _load(server: Served) -> str:
    said = f"{server.announcement.running}/{server.announcement.capacity} running"
    if server.announcement.queued:
        said += f", {server.announcement.queued} queued"
    return said


def _paused(workflow: ServedWorkflow) -> str:
    """``, paused by alice`` while a pause on ``workflow:<name>`` holds its new runs."""
    if not workflow.paused:
        return ""
    by = inert(workflow.paused_by, SHOWN["source"])
    return ", paused" + (f" by {by}" if by else "")


def _rows(found: list[Served]) -> list[list[str]]:
    rows = []
    for server in found:
        state = "online" + (", shared" if server.announcement.shared else "")
        for workflow in server.announcement.workflows:
            rows.append(
                [
                    workflow.name,
                    "\n".join(_param(p) for p in workflow.params) or "-",
                    inert(server.source, SHOWN["source"]),
                    (state if server.online else "offline") + _paused(workflow),
                    _load(server),
                    inert(workflow.doc, SHOWN["reason"]) or "-",
                ]
            )
    return sorted(rows, key=lambda row: (row[0], row[2]))


def served_json(found: list[Served]) -> dict[str, Any]:
    """`--json`: ``{"served": [{"online": ..., **announcement, "live_total": ...,
    "live_shown": ...}]}``, by source: an announcement lists at most 256 of its runs running
    and queued (fewer where they would not fit its size bound), ``live_total`` says how many
    there are (``running`` and ``queued``), ``live_shown`` how many ``live`` lists."""
    return {
        "served": [
            {
                "online": server.online,
                **msgspec.to_builtins(msgspec.structs.asdict(server.announcement)),
                **_live_counts(server),
            }
            for server in found
        ]
    }


def _live_counts(server: Served) -> dict[str, int]:
    said = server.announcement
    shown = len(said.live)
    return {"live_total": max(said.running + said.queued, shown), "live_shown": shown}


def _live_cut(found: list[Served]) -> str | None:
    """What ``--json``'s ``live`` lists leave out, in one line, or ``None``: nothing."""
    cut = [(s, _live_counts(s)) for s in found]
    cut = [(s, c) for s, c in cut if c["live_total"] > c["live_shown"]]
    if not cut:
        return None
    said = ", ".join(
        f"{inert(s.source, SHOWN['source'])} {c['live_shown']:,} of {c['live_total']:,}"
        for s, c in cut[:5]
    )
    more = f" and {len(cut) - 5:,} more" if len(cut) > 5 else ""
    return (
        f"the live runs of {len(cut):,} serving process(es) are listed in part ({said}{more}): "
        "an announcement lists at most 256, as many as fit its size bound; live_total counts "
        "them all; `cascade watch` shows every live run"
    )


@broker_options
def served(
    ctx: typer.Context,
    json_output: Json = False,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Who serves which workflows, with their params and load.

    Who serves which workflows: each serving process's workflows, their params (each one's
    type, default and description), whether it is online, and its load (runs running of its
    capacity, requests queued).

    `cascade start NAME` starts one. A process that ended without clearing its announcement
    is listed offline. Its triggers are listed under them: what each starts on, paused or
    not, the events it heard and the runs it started there, its last event. `--json` also
    says, per process, its runs running and queued (live_total) and how many its
    announcement lists (live_shown: at most 256), and its triggers.
    Example: cascade served --json
    """
    found = CliContext.of(ctx).run(
        broker,
        lambda c: Controller(c, timeout=broker.timeout).served(),
        if_silent="no serving process's announcement (is it the engines' broker?)",
    )
    if json_output:
        typer.echo(json.dumps(served_json(found), ensure_ascii=True))
        cut = _live_cut(found)
        if cut is not None:
            typer.echo(f"cascade: {cut}", err=True)
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print("nobody serves a workflow (no announcement was heard)", highlight=False)
        return
    print_fitted(console, *fitted(_COLUMNS, _rows(found), console.width, title="Served"))
    triggers = _trigger_rows(found)
    if triggers:
        print_fitted(console, *fitted(_TRIGGER_COLUMNS, triggers, console.width, title="Triggers"))
