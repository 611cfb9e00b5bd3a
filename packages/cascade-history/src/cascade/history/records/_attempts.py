"""A task's states, its attempts and the decisions on its holds, as the history reads them
back: each state it entered (:class:`StateChange`), each attempt's start, end, error,
traceback and hold (:class:`Attempt`, from its states), and each engine's answer to a
decision (:class:`DecisionRecord`, from the audit's ``decisions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Attempt", "DecisionRecord", "StateChange", "attempts_of"]

_ENDS = frozenset({"COMPLETED", "FAILED", "RETRYING", "SKIPPED", "CANCELLED", "HELD"})


@dataclass(frozen=True, slots=True)
class StateChange:
    """A task entering ``state`` at ``ts``, in its ``attempt``-th attempt (0: it never ran).

    ``held_by`` (``BLOCKED`` only, from engines that say it): what held it back, the
    event's holds as sent (see ``cascade.interfaces.Hold``); ``None`` when not said.
    ``traceback`` (``FAILED`` and ``RETRYING`` only, from engines that send it): the failed
    attempt's traceback, at most ``cascade.interfaces.wire.MAX_TRACEBACK_LENGTH`` characters and
    its marker; ``None`` when not sent. It is the engine's text: make it inert to show it.
    ``HELD``: the task failed its ``attempt`` and its engine holds it for a decision
    (``held_by`` has the hold of type ``decision``); ``decided`` (on the state a decision led
    to: the retry's ``RUNNING``, the ``SKIPPED``, ``COMPLETED`` or ``FAILED`` ending the
    hold) is the decision as sent (``cascade.interfaces.commands.Decided``: ``decision``,
    ``attempt``, ``by``, ``reason``, ``at``, ``deadline``), ``None`` elsewhere. ``reused_from``
    (``COMPLETED`` of a rerun, or of a cache's result): the run whose stored result it took
    instead of running; ``cached``: that ``COMPLETED``'s result came from the task's cache
    (``with_cache``).
    """

    state: str
    ts: float
    attempt: int
    duration_ms: float
    error: str
    held_by: list[dict[str, Any]] | None = None
    traceback: str | None = None
    decided: dict[str, Any] | None = None
    reused_from: str | None = None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        """This change as a JSON object (``held_by`` only where it was said)."""
        change: dict[str, Any] = {
            "state": self.state,
            "ts": self.ts,
            "attempt": self.attempt,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }
        if self.held_by is not None:
            change["held_by"] = self.held_by
        if self.traceback is not None:
            change["traceback"] = self.traceback
        if self.decided is not None:
            change["decided"] = self.decided
        if self.reused_from is not None:
            change["reused_from"] = self.reused_from
        if self.cached:
            change["cached"] = True
        return change


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a task (its ``number``-th start): when it started and ended (``None``:
    not seen, or not yet), how (``state``: ``COMPLETED``, ``FAILED``, ``RETRYING`` (failed, to
    be retried), ``HELD`` (failed, held for a decision), ``SKIPPED``, ``CANCELLED``, or
    ``RUNNING`` while it runs), its ``error`` and ``traceback`` when it failed, its ``hold``
    (the hold of type ``decision`` it was held by, as sent: ``attempt``, ``deadline``,
    ``default``) from ``held_at``, and ``decided``: the decision that ended that hold, as the
    run's telemetry said it (``decision``, ``by``, ``reason``, ``at``, ``deadline``: the
    hold's deadline took its default)."""

    number: int
    state: str
    started_at: float | None
    ended_at: float | None
    error: str = ""
    traceback: str | None = None
    hold: dict[str, Any] | None = None
    held_at: float | None = None
    decided: dict[str, Any] | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from its start to its end (``None`` while either is not known)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def to_json(self) -> dict[str, Any]:
        """This attempt as a JSON object (``duration`` included)."""
        return {
            "number": self.number,
            "state": self.state,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "error": self.error,
            "traceback": self.traceback,
            "hold": self.hold,
            "held_at": self.held_at,
            "decided": self.decided,
        }


def _decision_hold(held_by: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return next(
        (h for h in held_by or () if isinstance(h, dict) and h.get("type") == "decision"), None
    )


def attempts_of(states: Sequence[StateChange]) -> list[Attempt]:
    """The attempts of a task whose ``states`` (in time order) are these: one per attempt
    number seen from 1, the decisions the states carry put on the attempts they decided."""
    seen: dict[int, dict[str, Any]] = {}
    decided: dict[int, dict[str, Any]] = {}
    for change in states:
        if change.decided is not None:
            number = change.decided.get("attempt")
            decided[number if isinstance(number, int) else change.attempt] = change.decided
        if change.attempt < 1:
            continue
        attempt = seen.get(change.attempt)
        if attempt is None:
            attempt = seen[change.attempt] = {
                "number": change.attempt,
                "state": "RUNNING",
                "started_at": None,
                "ended_at": None,
            }
        if change.state == "RUNNING":
            attempt["started_at"] = attempt["started_at"] or change.ts
            continue
        if change.state not in _ENDS:
            continue
        attempt["state"] = change.state
        if change.state == "HELD":
            attempt["hold"] = _decision_hold(change.held_by)
            attempt["held_at"] = change.ts
        # it ended when it first did (a hold's decision after it ends no attempt), its error
        # the failure's (not a skip's "skipped by ...")
        if attempt["ended_at"] is None:
            attempt["ended_at"] = change.ts
        if change.error and "error" not in attempt:
            attempt["error"] = change.error
        if change.traceback is not None:
            attempt["traceback"] = change.traceback
    return [
        Attempt(**fields, decided=decided.get(number)) for number, fields in sorted(seen.items())
    ]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """An engine's answer to a decision on a held task of run ``run_id``, received at ``at``:
    the ``decision`` asked (``retry``, ``skip``, ``complete``, ``fail``) by ``issued_by``
    (claimed, echoed by the engine) for ``reason``, and its ``outcome``: ``applied``, or why
    the engine refused it (``already_decided``: ``decided`` is the decision that won, who took
    it and why; ``stale_attempt``, ``not_held``, ``unknown_task``, ``ambiguous``: then
    ``candidates`` are the held tasks' ids). ``task_id``, ``task_name`` and ``attempt``: the
    task the engine found and the attempt held when the request came (``None``: none)."""

    at: float
    run_id: str
    source: str
    request_id: str
    decision: str
    outcome: str
    task_id: str | None = None
    task_name: str | None = None
    attempt: int | None = None
    decided: dict[str, Any] | None = None
    candidates: list[str] | None = None
    reason: str | None = None
    issued_by: str | None = None
    issued_at: float | None = None

    @property
    def applied(self) -> bool:
        """Whether the engine applied it."""
        return self.outcome == "applied"

    def to_json(self) -> dict[str, Any]:
        """This answer as a JSON object."""
        return {
            "at": self.at,
            "run_id": self.run_id,
            "source": self.source,
            "request_id": self.request_id,
            "decision": self.decision,
            "outcome": self.outcome,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "attempt": self.attempt,
            "decided": self.decided,
            "candidates": self.candidates,
            "reason": self.reason,
            "issued_by": self.issued_by,
            "issued_at": self.issued_at,
        }
