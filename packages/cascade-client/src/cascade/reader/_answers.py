"""Engines' answers to a reader's snapshot requests: which a reader takes.

An answer (:class:`~cascade.interfaces.RunSnapshot`) can carry thousands of tasks, so a
reader takes one only about a run it asked about (:class:`Asked`), only from the source it
expects (the run's, or the one a summary named), and only within what an engine sends
(:func:`answer_part_refusal`), none of its tasks stamped ahead of the
reader's clock. A forged answer then costs a bounded
amount of memory and time, and changes nothing it cannot.
"""

from __future__ import annotations

from cascade.interfaces import Envelope, RunSnapshot
from cascade.interfaces.wire import MAX_SNAPSHOT_TASKS

from ._gaps import Seen
from ._refusals import REASON_FUTURE, ahead
from ._timestamps import parse_timestamp
from ._views import RunView

__all__ = [
    "ASK_WINDOW",
    "MAX_ANSWER_TASKS",
    "MAX_SNAPSHOT_PARTS",
    "Asked",
    "answer_part_refusal",
    "answer_refusal",
    "answer_stamped_ahead",
    "snapshot_events",
]

MAX_SNAPSHOT_PARTS = 64
"""Parts one answer may come in at most (an engine's answer of :data:`MAX_SNAPSHOT_TASKS`
tasks takes a few, of about 192 KiB each)."""

MAX_ANSWER_TASKS = 2 * MAX_SNAPSHOT_TASKS
"""Tasks one answer may list at most, all its parts together (engines list at most
:data:`MAX_SNAPSHOT_TASKS`): what a reader takes of one answer, whoever sent it."""

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
    :data:`~cascade.reader.REFUSAL_REASONS`), or ``None`` to take it."""
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


def snapshot_events(envelope: Envelope) -> list[Envelope]:
    """The task events a snapshot message lists, each in the envelope its engine had sent it in
    (its ``seq`` and ``ts``); ``[]`` for any other message."""
    body = envelope.body
    if not isinstance(body, RunSnapshot):
        return []
    return [
        Envelope(
            v=envelope.v,
            ts=task.ts,
            run_id=envelope.run_id,
            org_id=envelope.org_id,
            project_id=envelope.project_id,
            source=envelope.source,
            trace_id=envelope.trace_id,
            seq=task.seq,
            body=task.event(),
        )
        for task in body.tasks
    ]


def answer_part_refusal(body: RunSnapshot, taken: int = 0) -> Seen | None:
    """Why one part of an answer is out of what an engine sends (``None``: it is not).

    At most :data:`MAX_SNAPSHOT_PARTS` parts and :data:`MAX_ANSWER_TASKS` tasks in all
    (``taken``: the tasks of the answer's earlier parts), ``part`` among ``parts``,
    ``after <= through <= last_seq``, and every task numbered in ``(after, through]``:
    :attr:`~Seen.BEYOND` or :attr:`~Seen.INCONSISTENT` otherwise.
    """
    if body.parts > MAX_SNAPSHOT_PARTS or taken + len(body.tasks) > MAX_ANSWER_TASKS:
        return Seen.BEYOND
    if body.part > body.parts or not body.after <= body.through <= body.last_seq:
        return Seen.INCONSISTENT
    low, high = body.after, body.through
    if any(not low < task.seq <= high for task in body.tasks):
        return Seen.INCONSISTENT
    return None


def answer_stamped_ahead(body: RunSnapshot, now: float) -> bool:
    """Whether a task of the answer ``body`` is stamped beyond ``MAX_CLOCK_SKEW`` ahead of
    ``now``: the answer is refused as a whole, as an envelope stamped so would be."""
    for task in body.tasks:
        stamp = parse_timestamp(task.ts)
        if stamp is not None and ahead(stamp, now):
            return True
    return False
