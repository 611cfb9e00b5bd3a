"""What a run knew of its tasks beyond their results, kept in its journal so that a carry-on goes
on from it: the attempts that failed (a retry budget is not spent again), the holds and their
deadlines (a deadline stays the one set when the task was held), the decisions on them.

Written only where a task fails, is held or decided: nothing on the path of a task that
succeeds at its first attempt. Read back from a results store anyone who may write it may
change, so every note is checked before a carry-on believes it (:meth:`RunMemory.take`)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Literal, Protocol, TypeAlias

import msgspec

__all__ = [
    "MAX_NOTED_ERROR",
    "JournalNote",
    "MemoryCounts",
    "NoteEvent",
    "RunMemory",
]

_log = logging.getLogger("cascade.runtime.engine")

NoteEvent: TypeAlias = Literal["retrying", "held", "decided", "failed"]
_EVENTS = frozenset(("retrying", "held", "decided", "failed"))
_MAX_ATTEMPT = 10**9  # as the wire bounds an attempt's number
MAX_NOTED_ERROR = 4000
"""The characters of a failed attempt's error a note keeps."""
NOTE_STATES: dict[str, str] = {
    "retrying": "RETRYING",
    "held": "HELD",
    "decided": "DECIDED",
    "failed": "FAILED",
}
"""The ``state`` of a journal line that carries a note (a reader of the journal that knows no
note passes over a line that is not ``COMPLETED``)."""


class JournalNote(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """What happened to a task's ``attempt``, as a live run's journal notes it: ``retrying``
    (it failed, another attempt comes), ``held`` (it failed and is held for a decision, or
    it is a gate held for approval: ``gate``) until ``deadline`` (epoch seconds), ``decided``
    (a decision ended its hold), ``failed`` (it failed for good). ``error``: what the attempt
    raised, said (``ValueError: flaky``), cut at :data:`MAX_NOTED_ERROR` characters."""

    event: str
    attempt: int
    deadline: float | None = None
    gate: bool = False
    error: str | None = None


class MemoryCounts(Protocol):
    """Where a carry-on counts the notes it did not believe
    (:class:`~cascade.runtime.EngineStats`)."""

    journal_refused: int


class Remembered:
    """A note a carry-on believes: the ``event``, the ``attempt`` it names, its hold's
    ``deadline`` (``held``), and the attempt's ``error``."""

    __slots__ = ("attempt", "deadline", "error", "event")

    def __init__(self, event: str, attempt: int, deadline: float | None, error: str) -> None:
        self.event = event
        self.attempt = attempt
        self.deadline = deadline
        self.error = error


class RunMemory:
    """What the run ``lost_run`` (whose engine died) noted of its tasks (``notes``, by stable
    task key), for its carry-on: each note is taken once, as its task is about to start or be
    held, and believed only if an honest run could have written it."""

    def __init__(
        self, lost_run: str, notes: Mapping[str, JournalNote], stats: MemoryCounts | None
    ) -> None:
        self.lost_run = lost_run
        self._notes = dict(notes)
        self._stats = stats

    def __bool__(self) -> bool:
        return bool(self._notes)

    def take(self, key: str, *, gate: bool, timeout: float) -> Remembered | None:
        """The note of the task ``key`` (a gate, or not; ``timeout``: how long a hold of it
        waits now), once; ``None`` where there is none or it is not to be believed (logged,
        counted in ``journal_refused``): an event it does not know, an attempt out of bounds,
        a gate's note on a task that is none (or the other way), a hold's deadline that is not
        a finite time before a hold made now would end."""
        note = self._notes.pop(key, None)
        if note is None:
            return None
        why = _unbelievable(note, gate, timeout)
        if why is not None:
            if self._stats is not None:
                self._stats.journal_refused += 1
            _log.warning(
                "task %s: the note of run %s's journal is not believed (%s): it starts afresh",
                key,
                self.lost_run,
                why,
            )
            return None
        error = note.error if isinstance(note.error, str) else ""
        deadline = note.deadline if note.event == "held" else None
        return Remembered(note.event, note.attempt, deadline, error[:MAX_NOTED_ERROR])


def _unbelievable(note: JournalNote, gate: bool, timeout: float) -> str | None:
    """Why ``note`` cannot be an honest run's, or ``None``."""
    if note.event not in _EVENTS:
        return f"no event {note.event[:40]!r}"
    if not 1 <= note.attempt <= _MAX_ATTEMPT:
        return f"attempt {note.attempt} out of bounds"
    if note.gate != gate:
        return "a gate's note on a task that is none" if note.gate else "a gate without its note"
    if gate and note.attempt != 1:
        return "a gate has one attempt"
    if note.event == "held":
        deadline = note.deadline
        if deadline is None or not math.isfinite(deadline) or deadline <= 0:
            return "a hold without a deadline"
        if deadline > time.time() + timeout:
            return "a deadline later than a hold made now would have"
    return None
