"""What `cascade why` says of a run's blocked tasks, as lines or JSON (the command is
:mod:`.commands.why`)."""

from __future__ import annotations

import fnmatch
from typing import Any

import msgspec

from cascade.control.run_ids import short_id
from cascade.reader import SHOWN, RunView, TaskView, inert

from ...rendering._holds_text import decision_hold_text, holds_text
from ...rendering._render import lost_text
from ...rendering._status_json import iso_time
from ...rendering._times import TimeFormat, duration

__all__ = ["why_json", "why_lines"]


def _matches(task: TaskView, pattern: str | None) -> bool:
    return pattern is None or task.task_id == pattern or fnmatch.fnmatchcase(task.name, pattern)


_WAITING = ("HELD", "BLOCKED", "QUEUED")


def _blocked(run: RunView, pattern: str | None) -> list[TaskView]:
    """Its waiting tasks: those held for a decision first, then the blocked ones, then those
    waiting for a worker of their executor."""
    tasks = [t for t in run.tasks.values() if t.state in _WAITING and _matches(t, pattern)]
    return sorted(tasks, key=lambda task: (_WAITING.index(task.state), task.since))


def _held_line(run: RunView, task: TaskView, times: TimeFormat) -> str:
    """``load (load-1) held 2m05s: failed (ValueError: x); awaits a decision on attempt 1
    (fail at 14:02:11, in 23h57m, unless decided): cascade retry|skip|complete|fail
    58a88765cea2 load-1``; a gate's: ``gate (gate-2) held 5s: awaits approval: "Deploy?" (...):
    cascade complete|fail|skip 58a88765cea2 gate-2``."""
    name, ident = inert(task.name, SHOWN["name"]), inert(task.task_id, SHOWN["name"])
    hold = task.hold
    if hold is not None and hold.awaits_approval:
        error, decisions = "", "complete|fail|skip"
    else:
        error = f"failed ({inert(task.error, SHOWN['error'])}); " if task.error else "failed; "
        decisions = "retry|skip|complete|fail"
    waits = decision_hold_text(hold, times) if hold is not None else "awaits a decision"
    decide = f"cascade {decisions} {short_id(run.run_id)} {ident}"
    return f"  {name} ({ident}) held {duration(times.now - task.since)}: {error}{waits}: {decide}"


def _summary(run: RunView) -> str:
    beat = run.heartbeat
    if beat is not None:
        held = beat.held if isinstance(beat.held, int) else 0
        counts = {
            "held": held,
            "blocked": beat.blocked - held,
            "running": beat.running,
            "pending": beat.pending,
        }
    else:
        seen = run.counts()
        counts = {
            "held": seen["HELD"],
            "blocked": seen["BLOCKED"],
            "queued": seen["QUEUED"],
            "running": seen["RUNNING"],
        }
    said = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    return f"{run.status}" + (f", {said}" if said else "")


def why_lines(run: RunView, pattern: str | None, times: TimeFormat) -> list[str]:
    source = inert(run.source, SHOWN["source"])
    head = f"run {inert(short_id(run.run_id), SHOWN['name'])} ({source}): {_summary(run)}"
    if run.lost:  # what it had running is no longer running anywhere
        head = f"run {inert(short_id(run.run_id), SHOWN['name'])} ({source}): {run.status}"
        return [head, f"  {lost_text(run, times).plain}: nothing waits"]
    if run.finished:
        return [head, "  it has ended: nothing waits"]
    lines = [head]
    blocked = _blocked(run, pattern)
    for task in blocked:
        if task.state == "HELD":
            lines.append(_held_line(run, task, times))
            continue
        held = (
            holds_text(task.held_by, times)
            if task.held_by is not None
            else "its engine does not say (an engine from before held_by)"
        )
        name = inert(task.name, SHOWN["name"])
        waited = duration(times.now - task.since)
        said = task.state.lower()  # blocked, or queued
        lines.append(f"  {name} ({inert(task.task_id, SHOWN['name'])}) {said} {waited}: {held}")
    if not blocked:
        known = [t for t in run.tasks.values() if pattern is not None and _matches(t, pattern)]
        if known:
            lines += [f"  {inert(t.name, SHOWN['name'])} is {t.state}, not blocked" for t in known]
        else:
            lines.append("  nothing blocked" + (f" matches {pattern!r}" if pattern else ""))
    listed = run.heartbeat.blocked if run.heartbeat is not None else 0
    if pattern is None and listed > len(blocked):
        lines.append(f"  ({listed - len(blocked)} more blocked: heartbeats list the first 16)")
    return lines


def why_json(run: RunView, pattern: str | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "source": run.source,
        "status": run.status,
        "heartbeat": msgspec.to_builtins(run.heartbeat) if run.heartbeat else None,
        "blocked": [
            {
                "task_id": task.task_id,
                "task_name": task.name,
                "state": task.state,
                "error": task.error,
                "since": iso_time(task.since),
                "held_by": None if task.held_by is None else msgspec.to_builtins(task.held_by),
            }
            for task in _blocked(run, pattern)
        ],
    }
