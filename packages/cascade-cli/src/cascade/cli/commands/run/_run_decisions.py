"""What `cascade run` says of a run's holds and decisions: its tasks held for a decision now,
each with its attempts (how each ended, after how long, its error, the decision on its hold),
and every decision the run's engine answered (applied or refused: who asked, why, on which
attempt, what came of it), as the history recorded them (rendered by :mod:`._run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from cascade.interfaces.wire import APPROVAL
from cascade.reader import SHOWN, inert

from ...plumbing._history_db import cell
from ...rendering._render import STATE_STYLES, TimeFormat, duration

if TYPE_CHECKING:
    from cascade.history import Attempt, DecisionRecord, TaskHistory

__all__ = ["attempts_text", "decided_text", "decisions_lines", "held_lines"]

_DECISIONS_SHOWN = 20  # the run's latest decisions listed (--json has them all)


def decided_text(decided: dict[str, Any], times: TimeFormat) -> str:
    """``retry by alice at 12:03:04 (API back)``; a deadline's: ``fail at the hold's
    deadline``; each text of it made inert."""
    decision = inert(str(decided.get("decision", "?")), SHOWN["params"])
    if decided.get("deadline"):
        said = f"{decision} at the hold's deadline"
    else:
        by = decided.get("by")
        said = f"{decision} by {inert(str(by), SHOWN['source']) if by else 'someone unnamed'}"
    at = decided.get("at")
    if isinstance(at, (int, float)):
        said += f" at {times.at(at)}"
    reason = decided.get("reason")
    if reason:
        said += f" ({inert(str(reason), SHOWN['reason'])})"
    return said


def _attempt_text(attempt: Attempt, times: TimeFormat) -> Text:
    text = Text(f"{attempt.number} ")
    text.append(attempt.state.lower(), style=STATE_STYLES.get(attempt.state, ""))
    if attempt.duration is not None:
        text.append(f" after {duration(attempt.duration)}")
    if attempt.error:
        text.append(": ").append_text(cell(attempt.error, SHOWN["error"], "red"))
    if attempt.decided is not None:
        text.append(f" \u2192 {decided_text(attempt.decided, times)}", style="bold")
    return text


def attempts_text(task: TaskHistory, times: TimeFormat) -> Text:
    """``attempts: 1 held after 2.0s: ConnectionError… → retry by alice …; 2 completed``."""
    parts = [_attempt_text(attempt, times) for attempt in task.attempt_list]
    return Text("attempts: ").append_text(Text("; ").join(parts)) if parts else Text("")


def _heading(title: str, rest: str) -> Text:
    return Text(title, style="bold").append(f": {rest}")


def held_lines(held: list[TaskHistory], count: int, times: TimeFormat) -> list[RenderableType]:
    """``Held: 2, waiting for a decision`` and each held task: its name, id, and attempts
    (nothing when none is held)."""
    if not count:
        return []
    said = f"{count:,}, waiting for a decision (cascade retry|skip|complete|fail RUN TASK)"
    lines: list[RenderableType] = [_heading("Held", said)]
    for task in held:
        head = Text("  ").append_text(cell(task.task_name, SHOWN["name"], STATE_STYLES["HELD"]))
        head.append(f"  {inert(task.task_id, SHOWN['name'])}", style="dim")
        hold = next((a.hold for a in reversed(task.attempt_list) if a.hold), None)
        if hold is not None and isinstance(hold.get("deadline"), (int, float)):
            default = inert(str(hold.get("default") or "fail"), SHOWN["params"])
            head.append(f"  {default} at {times.at(hold['deadline'])} unless decided")
        if hold is not None and hold.get("kind") == APPROVAL:
            prompt = hold.get("prompt")
            shown = f': "{inert(prompt, SHOWN["reason"])}"' if isinstance(prompt, str) else ""
            head.append(f"  awaiting approval{shown}")
        lines.append(head)
        lines.append(Padding(attempts_text(task, times), (0, 0, 0, 4)))
    if count > len(held):
        lines.append(Text(f"  … {count - len(held):,} more: --state held lists them", style="dim"))
    return lines


def _outcome(record: DecisionRecord, times: TimeFormat) -> Text:
    if record.applied:
        return Text("applied", style="green")
    text = Text(f"refused: {inert(record.outcome, SHOWN['params'])}", style="yellow")
    if record.decided is not None:
        text.append(f" ({decided_text(record.decided, times)})")
    return text


def decisions_lines(records: list[DecisionRecord], times: TimeFormat) -> list[RenderableType]:
    """``Decisions: 3`` and each answer of the run's engine to a decision, the latest last:
    when, what on which task and attempt, who asked and why, what came of it."""
    if not records:
        return []
    grid = Table.grid(padding=(0, 2))
    for _ in range(5):
        grid.add_column(overflow="fold")
    shown = records[-_DECISIONS_SHOWN:]
    for record in shown:
        task = inert(record.task_name or record.task_id or "?", SHOWN["name"])
        attempt = f" attempt {record.attempt}" if record.attempt is not None else ""
        by = inert(record.issued_by, SHOWN["source"]) if record.issued_by else "someone unnamed"
        why = inert(record.reason, SHOWN["reason"]) if record.reason else "-"
        grid.add_row(
            times.short(record.at),
            Text(f"{inert(record.decision, SHOWN['params'])} {task}{attempt}", style="bold"),
            f"by {by}",
            why,
            _outcome(record, times),
        )
    lines: list[RenderableType] = [
        _heading("Decisions", f"{len(records):,}"),
        Padding(grid, (0, 0, 0, 2), expand=False),
    ]
    if len(records) > len(shown):
        lines.append(
            Text(f"  … {len(records) - len(shown):,} earlier: --json has them all", style="dim")
        )
    return lines
