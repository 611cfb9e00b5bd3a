"""What holds a blocked task, in words: `watch`, `why` (and, in its own words, the dashboard).

Every text in a hold came from a message, so each goes through :func:`~._inert.inert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from cascade.interfaces import Hold
from cascade.reader import SHOWN, inert

from ._plural import counted
from ._times import TimeFormat, duration

__all__ = [
    "NOTHING_HOLDS",
    "decision_hold_text",
    "hold_text",
    "holds_text",
    "queued_hold_text",
    "recorded_holds_brief",
    "recorded_holds_text",
    "resource_hold_text",
]

NOTHING_HOLDS = "nothing holds it now: it starts at its engine's next free slot"
_HOLDERS_SHOWN = 3


def _issued(hold: Hold) -> str:
    said = ""
    if hold.issued_by:
        said += f" by {inert(hold.issued_by, SHOWN['source'])}"
    if hold.reason:
        said += f' "{inert(hold.reason, SHOWN["reason"])}"'
    return said


def hold_text(hold: Hold, times: TimeFormat) -> str:
    """One hold: ``pause on task:load_* by alice "maintenance"``, ``concurrency 2/2 on
    task:api_* (running: 2 api_get)``, ``rate_limit 10/m on global, next start 14:02:11
    (in 3.2s)``, ``resource:gpu_slots needs 1 (1 of 1 in use by train-12)``, ``waiting for
    one of 32 threads (all busy)``, or that the engine waits for the broker's constraints."""
    kind = inert(hold.type, 64)
    if hold.type == "sync":
        return "waiting for the broker's retained constraints (after connecting)"
    if hold.awaits_worker:
        return queued_hold_text(hold)
    if hold.awaits_decision:
        return decision_hold_text(hold, times)
    if hold.type == "resource" and hold.resource is not None:
        return resource_hold_text(hold)
    scope = f" on {inert(hold.scope, SHOWN['scope'])}" if hold.scope else ""
    if hold.type == "concurrency" and hold.limit is not None:
        running = hold.running if hold.running is not None else hold.limit
        text = f"concurrency {running}/{hold.limit}{scope}"
        if hold.holders:
            most = sorted(hold.holders.items(), key=lambda item: -item[1])[:_HOLDERS_SHOWN]
            names = ", ".join(f"{n} {inert(name, SHOWN['name'])}" for name, n in most)
            more = len(hold.holders) - len(most)
            text += (
                f" (running: {names}"
                + (f", {counted(more, 'more name')}" if more > 0 else "")
                + ")"
            )
        return text + _issued(hold)
    if hold.type == "rate_limit":
        rate = f" {inert(hold.rate, 64)}" if hold.rate else ""
        text = f"rate_limit{rate}{scope}"
        if hold.next_start is not None:
            wait = duration(hold.next_start - times.now)
            text += f", next start {times.at(hold.next_start)} (in {wait})"
        return text + _issued(hold)
    return f"{kind}{scope}" + _issued(hold)


def queued_hold_text(hold: Hold) -> str:
    """A task handed to its executor whose workers are all busy: ``waiting for one of 32
    threads (all busy)``, ``waiting for one of 8 worker processes (all busy)``."""
    kind = {"threads": "threads", "processes": "worker processes"}.get(
        hold.executor or "",
        f"workers of {inert(hold.executor, 64)}" if hold.executor else "workers",
    )
    if hold.workers is None:
        return f"waiting for one of its executor's {kind} (all busy)"
    return f"waiting for one of {hold.workers} {kind} (all busy)"


def _amount(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def resource_hold_text(hold: Hold) -> str:
    """A task waiting for a system resource: ``resource:gpu_slots needs 1 (1 of 1 in use by
    train-12)``, or, when it would fit but an earlier task waits for it, ``resource:memory_gb
    needs 8 (16 of 32 in use; big-3 waits for it first)``."""
    text = f"resource:{inert(hold.resource or '', SHOWN['name'])}"
    if hold.amount is not None:
        text += f" needs {_amount(hold.amount)}"
    used = f"{_amount(hold.in_use)} of {_amount(hold.capacity)} in use"
    if hold.ahead:
        return f"{text} ({used}; {inert(hold.ahead, SHOWN['name'])} waits for it first)"
    if hold.users:
        most = sorted(hold.users.items(), key=lambda item: -item[1])[:_HOLDERS_SHOWN]
        names = ", ".join(inert(task_id, SHOWN["name"]) for task_id, _ in most)
        more = len(hold.users) - len(most)
        used += f" by {names}" + (f", {counted(more, 'more task')}" if more > 0 else "")
    return f"{text} ({used})"


def decision_hold_text(hold: Hold, times: TimeFormat) -> str:
    """A failed task's hold: ``awaits a decision on attempt 2 (fail at 14:02:11, in
    23h59m, unless decided)``; a gate's: ``awaits approval: "Deploy v1.2?" (fail at
    14:02:11, in 59m, unless decided)``."""
    if hold.awaits_approval:
        said = "awaits approval"
        if hold.prompt:
            said += f': "{inert(hold.prompt, SHOWN["reason"])}"'
    else:
        said = "awaits a decision"
        if hold.attempt is not None:
            said += f" on attempt {hold.attempt}"
    default = inert(hold.default, 64) if hold.default else "its default"
    if hold.deadline is None:
        return said
    when = f"{times.at(hold.deadline)}, in {duration(hold.deadline - times.now)}"
    return f"{said} ({default} at {when}, unless decided)"


def holds_text(holds: Sequence[Hold], times: TimeFormat) -> str:
    """Every hold of a task, ``; ``-separated; :data:`NOTHING_HOLDS` when none."""
    return "; ".join(hold_text(hold, times) for hold in holds) or NOTHING_HOLDS


_UNREAD = "(holds the history kept in a form this version does not read)"


def recorded_holds_text(held_by: list[dict[str, Any]], times: TimeFormat) -> str:
    """:func:`holds_text` of the holds a history kept (JSON objects, as the engine sent them)."""
    try:
        holds = msgspec.convert(held_by, list[Hold])
    except msgspec.ValidationError:
        return _UNREAD
    return holds_text(holds, times)


def _brief(hold: Hold) -> str:
    if hold.type == "sync":
        return "constraints sync"
    if hold.awaits_worker:
        return "a worker"
    if hold.awaits_approval:
        return "approval"
    if hold.awaits_decision:
        return "a decision"
    if hold.type == "resource" and hold.resource is not None:
        return f"resource {inert(hold.resource, SHOWN['name'])}"
    scope = f" {inert(hold.scope, SHOWN['scope'])}" if hold.scope else ""
    return f"{inert(hold.type, 64)}{scope}"


def recorded_holds_brief(held_by: list[dict[str, Any]]) -> str:
    """What held a task, as a table cell says it: each hold's type and scope only (``pause
    task:transform``); who, why and when are :func:`recorded_holds_text`'s."""
    try:
        holds = msgspec.convert(held_by, list[Hold])
    except msgspec.ValidationError:
        return _UNREAD
    return ", ".join(dict.fromkeys(_brief(hold) for hold in holds))
