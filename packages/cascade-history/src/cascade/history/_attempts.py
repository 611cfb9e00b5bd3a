"""A task's attempts and the decisions on its holds, as the history reads them back: each
attempt's start, end, error, traceback and hold (:class:`Attempt`, from a task's states), and
each engine's answer to a decision (:class:`DecisionRecord`, from the audit's ``decisions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._records import StateChange

__all__ = ["Attempt", "DecisionRecord", "attempts_of"]

_ENDS = frozenset({"COMPLETED", "FAILED", "RETRYING", "SKIPPED", "CANCELLED", "HELD"})


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
    return next((h for h in held_by or () if isinstance(h, dict) and h.get("type") == "decision"),
                None)  # fmt: skip


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
