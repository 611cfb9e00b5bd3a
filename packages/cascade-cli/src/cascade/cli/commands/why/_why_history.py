"""`cascade why` from the history: its `--history` answer, and the answer for a run nothing
was heard of live (it has ended)."""

from __future__ import annotations

import fnmatch
import json
import time

import typer

from cascade.control.run_ids import Recorded, is_full, short_id
from cascade.reader import SHOWN, inert

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import fail
from ...plumbing._history_db import recorded_run_pages
from ...plumbing._run_lookup import recorded_run_ids
from ...rendering._holds_text import recorded_holds_text
from ...rendering._times import TimeFormat, duration

__all__ = ["not_heard", "why_from_history"]


def why_from_history(
    run_id: str, pattern: str | None, *, json_output: bool, db: str | None
) -> None:
    """The recorded answer: each task of the run that was ever blocked, with its holds."""
    held = []
    for detail in recorded_run_pages("why", db, run_id):  # a page at a time: only the held kept
        held += [
            t
            for t in detail.tasks
            if t.blocked_s
            and (
                pattern is None or t.task_id == pattern or fnmatch.fnmatchcase(t.task_name, pattern)
            )
        ]
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "run_id": detail.run.run_id,
                    "status": detail.run.status,
                    "held": [
                        {
                            "task_id": t.task_id,
                            "task_name": t.task_name,
                            "state": t.state,
                            "blocked_s": t.blocked_s,
                            "held_by": t.held_by,
                        }
                        for t in held
                    ],
                }
            )
        )
        return
    times = TimeFormat(time.time())
    summary = detail.run
    source = inert(summary.source, SHOWN["source"])
    shown = inert(short_id(summary.run_id), SHOWN["name"])
    typer.echo(f"run {shown} ({source}): {summary.status}")
    for t in held:
        what = (
            recorded_holds_text(t.held_by, times)
            if t.held_by is not None
            else "its engine did not say (an engine from before held_by)"
        )
        now = "is blocked" if t.state == "BLOCKED" else "was held"
        name = inert(t.task_name, SHOWN["name"])
        task_id = inert(t.task_id, SHOWN["name"])
        took = duration(t.blocked_s)
        typer.echo(f"  {name} ({task_id}) {now} {took} in all, the last time by: {what}")
    if not held:
        typer.echo(
            "  no task of it was held back" + (f" that matches {pattern!r}" if pattern else "")
        )


def not_heard(
    run_id: str,
    recorded: Recorded,
    pattern: str | None,
    *,
    json_output: bool,
    db: str | None,
    broker: BrokerOptions,
) -> None:
    """Nothing of the run heard live: the history's answer, saying so, when it has the run;
    else one line saying where to look (exit 1)."""
    if is_full(run_id):
        recorded = recorded_run_ids(db, run_id)
    waited = f"within {broker.timeout:g} s"
    if recorded.location is None:
        raise fail(
            f"nothing heard of run {run_id} {waited}: if it has ended, --history answers from "
            "the history `cascade record` keeps; else its engine is not connected to this "
            "broker or sends no heartbeat that often (give more --timeout)"
        )
    if run_id not in recorded.ids:
        raise fail(
            f"run {run_id} is unknown: nothing heard of it {waited}, and the history at "
            f"{recorded.location} has no run whose id starts with it"
        )
    typer.echo(
        f"cascade: nothing heard of run {short_id(run_id)} {waited}: "
        f"answering from the history at {recorded.location}",
        err=True,
    )
    why_from_history(run_id, pattern, json_output=json_output, db=db)
