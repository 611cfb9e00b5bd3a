"""Engines' answers to a reader's snapshot requests: which a reader takes.

An answer (:class:`~cascade.interfaces.RunSnapshot`) can carry thousands of tasks, so a
reader takes one only about a run it asked about (:class:`Asked`), only from the source it
expects (the run's, or the one a summary named), and only within what an engine sends
(:func:`~cascade.interfaces.answer_part_refusal`), none of its tasks stamped ahead of the
reader's clock. A forged answer then costs a bounded
amount of memory and time, and changes nothing it cannot.
"""

from __future__ import annotations

from cascade.interfaces import (
    REASON_FUTURE,
    RunSnapshot,
    Seen,
    answer_part_refusal,
    answer_stamped_ahead,
)

from ._views import RunView

__all__ = ["ASK_WINDOW", "Asked", "answer_refusal"]

ASK_WINDOW = 60.0
"""Seconds after asking about a run during which a reader takes an answer about it."""

_ASKED_KEPT = 10_000  # runs remembered as asked about, the oldest forgotten first


class Asked:
    """The runs a reader asked about lately, and the source each answer is expected from."""

    def __init__(self) -> None:
        self._asked: dict[str, tuple[str | None, float]] = {}

    def note(self, run_id: str, source: str | None, now: float) -> None:
        """The reader asks about ``run_id`` at ``now``, of ``source`` when it knows it."""
        self._asked.pop(run_id, None)
        self._asked[run_id] = (source, now)  # the newest last: the oldest go first
        if len(self._asked) > _ASKED_KEPT:
            del self._asked[next(iter(self._asked))]

    def expected(self, run_id: str, now: float) -> tuple[bool, str | None]:
        """Whether ``run_id`` was asked about within :data:`ASK_WINDOW`, and of whom."""
        asked = self._asked.get(run_id)
        if asked is None or now - asked[1] > ASK_WINDOW:
            return False, None
        return True, asked[0]

    def done(self, run_id: str) -> None:
        """``run_id``'s answer is all in, or the reader no longer follows it."""
        self._asked.pop(run_id, None)


def answer_refusal(
    asked: Asked, run: RunView | None, run_id: str, source: str, body: RunSnapshot, now: float
) -> str | None:
    """Why one part of an answer about ``run_id`` from ``source`` is refused (a reason of
    :data:`~cascade.interfaces.REFUSAL_REASONS`), or ``None`` to take it."""
    mid_answer = run is not None and run.answer_key is not None
    was_asked, expected = asked.expected(run_id, now)
    if not (was_asked or mid_answer):
        return Seen.UNASKED.value
    owner = run.source if run is not None else expected
    if owner is not None and source != owner:
        return Seen.FOREIGN.value
    key = (body.after, body.through, body.last_seq, body.parts)
    taken = run.answer_tasks if run is not None and run.answer_key == key else 0
    refusal = answer_part_refusal(body, taken)
    if refusal is not None:
        return refusal.value
    return REASON_FUTURE if answer_stamped_ahead(body, now) else None
