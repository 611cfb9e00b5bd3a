"""What `cascade held` shows of each held task: a table, or JSON."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from cascade.control.run_ids import short_id
from cascade.interfaces.wire import MAX_PROMPT_LENGTH
from cascade.reader import SHOWN, HeldTask, inert

from ...rendering._fit import Cell, Column, fitted
from ...rendering._render import STATE_STYLES
from ...rendering._status_json import iso_time
from ...rendering._times import TimeFormat, duration

__all__ = ["held_json", "held_table", "waiting_text"]


def waiting_text(held: HeldTask) -> str:
    """What waits in the held task's run: ``3 blocked, 2 pending`` (its last heartbeat's
    counts; ``unknown`` without one)."""
    if held.run_blocked is None:
        return "unknown"
    pending = f", {held.run_pending} pending" if held.run_pending else ""
    return f"{held.run_blocked} blocked{pending}"


def _why(held: HeldTask) -> Text:
    """Why it is held: a gate's prompt, awaiting approval; a failed task's error."""
    if held.awaits_approval:
        prompt = inert(held.prompt, MAX_PROMPT_LENGTH) if held.prompt else "-"
        return Text(f"awaiting approval: {prompt}", style="yellow")
    return Text(inert(held.error, SHOWN["error"]) or "-", style="red")


_COLUMNS = (
    Column("run", whole=True),
    Column("task", fold=16),
    Column("attempt", whole=True, justify="right"),
    Column("error", fold=16),
    Column("held", whole=True, rank=3),
    Column("deadline", whole=True, rank=4),
    Column("default", whole=True, rank=2),
    Column("waiting", rank=1),
)


def held_table(found: list[HeldTask], times: TimeFormat, width: int) -> tuple[Table, list[str]]:
    """One row per held task, the longest held first, fitted to ``width`` (and the columns
    left out)."""
    style = STATE_STYLES["HELD"]
    rows: list[list[Cell]] = []
    for held in found:
        name = inert(held.name, SHOWN["name"])
        ident = inert(held.task_id, SHOWN["name"])
        rows.append(
            [
                Text(short_id(held.run_id), style="bold"),
                Text(name if ident == name else f"{name} ({ident})", style=style),
                "-" if held.attempt is None else str(held.attempt),
                _why(held),
                duration(times.now - held.since),
                "-" if held.deadline is None else times.short(held.deadline),
                inert(held.default or "-", 64),
                waiting_text(held),
            ]
        )
    return fitted(_COLUMNS, rows, width, title=f"Held tasks (times in {times.zone})")


def held_json(held: HeldTask, now: float) -> dict[str, Any]:
    """Every field of a held task (times in ISO 8601, UTC; texts as their engine sent them)."""
    return {
        "run_id": held.run_id,
        "org_id": held.org_id,
        "project_id": held.project_id,
        "source": held.source,
        "task_id": held.task_id,
        "task_name": held.name,
        "attempt": held.attempt,
        "error": held.error,
        "awaits_approval": held.awaits_approval,
        "prompt": held.prompt,
        "since": iso_time(held.since),
        "age_s": round(max(0.0, now - held.since), 3),
        "deadline": iso_time(held.deadline),
        "default": held.default,
        "run_blocked": held.run_blocked,
        "run_pending": held.run_pending,
    }
