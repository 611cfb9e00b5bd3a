"""What `cascade start` and `cascade rerun` say of an answer: one line for a start, a table
for a dry run's plan, the reply as JSON with `--json`; and the run's end with `--wait`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args

import msgspec
from rich.console import Console

from cascade.control.run_ids import short_id
from cascade.interfaces.serving import PlanStep, StartReply
from cascade.interfaces.wire import PlanAction, RunStatus
from cascade.reader import SHOWN, inert

from ...rendering._fit import Column, fitted, print_fitted

__all__ = ["print_plan", "print_steps", "reply_json", "said_refused", "said_started"]

_PLAN_COLUMNS = (
    Column("TASK"),
    Column("ACTION", whole=True),
    Column("WHY", rank=1),
    Column("FROM RUN", whole=True, rank=2),
)


def said_started(reply: StartReply) -> str:
    """``started nightly as run 58a88765cea2 on host-1`` (``rerun of 1a2b3c4d5e6f``,
    ``queued: every slot is busy``)."""
    source = inert(reply.source, SHOWN["source"])
    rerun = f" (a rerun of {short_id(reply.rerun_of)})" if reply.rerun_of else ""
    queued = "; queued until a slot is free" if reply.queued else ""
    return (
        f"started {reply.workflow} as run {short_id(reply.run_id or '')} on {source}{rerun}{queued}"
    )


def said_refused(reply: StartReply, what: str) -> str:
    """``host-1 refused to start nightly: nightly() missing 1 required argument: 'day'``."""
    source = inert(reply.source, SHOWN["source"])
    return f"{source} refused to {what} {reply.workflow}: {inert(reply.error, SHOWN['error'])}"


def print_plan(console: Console, reply: StartReply) -> None:
    """A dry run's plan as a table (TASK / ACTION / WHY / FROM RUN), and its counts."""
    of = f" of run {short_id(reply.rerun_of)}" if reply.rerun_of else ""
    title = f"A rerun{of} of {reply.workflow} on {inert(reply.source, SHOWN['source'])}"
    print_steps(console, reply.plan, reply.plan_count, title)


def print_steps(console: Console, plan: Sequence[PlanStep], count: int, title: str) -> None:
    """A rerun's ``plan`` (of ``count`` steps in all) as a table under ``title``, and its
    counts (with the items of the maps that run again, where known); nothing was started."""
    rows = [
        [
            inert(step.task_name, SHOWN["name"]),
            step.action,
            inert(step.why, SHOWN["reason"]) or "-",
            short_id(step.from_run) if step.from_run else "-",
        ]
        for step in plan
    ]
    print_fitted(console, *fitted(_PLAN_COLUMNS, rows, console.width, title=title))
    counts = {action: sum(s.action == action for s in plan) for action in get_args(PlanAction)}
    said = ", ".join(f"{n} to {action}" for action, n in counts.items() if n)
    counted = [s for s in plan if s.items is not None]
    if counted:  # maps that run again, their items known: what becomes of them
        items = sum(s.items or 0 for s in counted)
        reused = sum(s.items_reused or 0 for s in counted)
        said += f" (of {items:,} map items, {items - reused:,} to run, {reused:,} to reuse)"
    more = count - len(plan)
    tail = f" ({more} more not listed)" if more > 0 else ""
    console.print(f"{said or 'nothing to do'}{tail}; nothing was started", highlight=False)


def reply_json(reply: StartReply, status: RunStatus | None = None) -> str:
    """The reply as `--json` prints it (with ``status``: how the run ended, `--wait`)."""
    body: dict[str, Any] = msgspec.to_builtins(msgspec.structs.asdict(reply))
    if status is not None:
        body["status"] = status
    return json.dumps(body, ensure_ascii=True)
