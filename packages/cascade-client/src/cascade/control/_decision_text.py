"""A decision's answer in words, for people: what was applied, or why it was refused and, when
the hold had been decided before, by whom, how long ago and why."""

from __future__ import annotations

from cascade.interfaces.commands import Decided, DecisionReply, DecisionRequest
from cascade.reader import SHOWN, inert

from ._run_ids import short_id

__all__ = ["ago", "describe_decided", "said_of"]

_CANDIDATES_SHOWN = 5
_DONE = {"retry": "retried", "skip": "skipped", "complete": "completed", "fail": "failed"}


def ago(seconds: float) -> str:
    """``12 s``, ``3 min``, ``5 h``, ``2 d``: a past moment's age as people say it."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def describe_decided(decided: Decided, now: float) -> str:
    """``retry by alice 12 s ago (API back)``; a deadline's: ``fail at the hold's deadline
    3 min ago``; someone unnamed: ``skip by someone unnamed``."""
    if decided.deadline:
        said = f"{decided.decision} at the hold's deadline"
    else:
        by = "someone unnamed" if decided.by is None else inert(decided.by, SHOWN["source"])
        said = f"{decided.decision} by {by}"
    if decided.at is not None:
        said += f" {ago(now - decided.at)} ago"
    if decided.reason:
        said += f" ({inert(decided.reason, SHOWN['reason'])})"
    return said


def _task(reply: DecisionReply, request: DecisionRequest | None, attempt: bool = True) -> str:
    """``load (load-1, attempt 1) of run 58a88765cea2``, with what the engine found, else what
    was asked for."""
    asked = request.task if request is not None else "?"
    name = inert(reply.task_name or asked, SHOWN["name"])
    about = [inert(reply.task_id, SHOWN["name"])] if reply.task_id and reply.task_id != name else []
    if attempt and reply.attempt is not None:
        about.append(f"attempt {reply.attempt}")
    inside = f" ({', '.join(about)})" if about else ""
    return f"{name}{inside} of run {short_id(reply.run_id)}"


def said_of(reply: DecisionReply, request: DecisionRequest | None, now: float) -> str:
    """The one line a face shows of ``reply`` (the answer to ``request``)."""
    task = _task(reply, request)
    source = inert(reply.source, SHOWN["source"])
    outcome = reply.outcome
    if outcome == "applied":
        done = f"{_DONE[reply.decision]} {task} on {source}"
        if reply.decision == "retry" and reply.attempt is not None:
            done += f": attempt {reply.attempt + 1} starts"
        return done
    if outcome == "already_decided":
        first = "" if reply.decided is None else f": {describe_decided(reply.decided, now)}"
        return f"{task}: already decided{first}"
    if outcome == "not_held":
        last = (
            ""
            if reply.decided is None
            else (f" (last decided: {describe_decided(reply.decided, now)})")
        )
        return f"{task} is not held{last}"
    if outcome == "unknown_task":
        asked = inert(request.task if request is not None else "?", SHOWN["name"])
        return f"run {short_id(reply.run_id)} has no task {asked}"
    if outcome == "ambiguous":
        ids = [inert(c, SHOWN["name"]) for c in reply.candidates or []]
        shown = ", ".join(ids[:_CANDIDATES_SHOWN])
        more = f" and {len(ids) - _CANDIDATES_SHOWN} more" if len(ids) > _CANDIDATES_SHOWN else ""
        asked = inert(request.task if request is not None else "?", SHOWN["name"])
        return (
            f"several held tasks of run {short_id(reply.run_id)} are named {asked}: "
            f"{shown}{more} (name one by its id)"
        )
    if outcome == "stale_attempt":
        wanted = request.attempt if request is not None else None
        named = f", not {wanted}" if wanted is not None else ""
        held = f"attempt {reply.attempt}" if reply.attempt is not None else "another attempt"
        return f"{_task(reply, request, attempt=False)} is held at {held}{named}"
    if outcome == "not_retryable":
        return (
            f"{_task(reply, request, attempt=False)} is a gate: it has no attempt to retry "
            "(approve it with complete, reject it with fail, or skip it)"
        )
    return f"{task}: refused ({inert(outcome, SHOWN['params'])})"
