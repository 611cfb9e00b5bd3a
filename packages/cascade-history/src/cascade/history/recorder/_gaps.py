"""A recorder's gap counts: what it found missing of each source's numbered events.

:class:`RecorderGaps` feeds a :class:`~cascade.reader.GapCounter` from
what the recorder receives (every event's ``seq``, every heartbeat's
``last_seq``), follows each run's source, hands back the counter's verdict (what no
engine of the run can have sent is refused), and tells the writer what changed
per source since its last write (which the writes add to the ``source_gaps`` table in
the batch's transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cascade.interfaces import (
    Envelope,
    Heartbeat,
    InvalidIdError,
    LifecycleEvent,
    RunSnapshot,
    validate_id,
)
from cascade.reader import GapCounter, Seen, SourceGaps, answer_part_refusal

__all__ = ["MAX_FOLLOWED", "RecorderGaps"]

MAX_FOLLOWED = 50_000
"""Runs a recorder follows at once; a new run beyond that takes the place of the one heard of
least recently (counted in :attr:`RecorderGaps.unfollowed` if it had not ended)."""
_ENDED_FOR = 60.0  # seconds a run is still followed after its end (late copies fill holes)
# seconds a run that has not ended is followed without news of it: a live run's engine sends
# its heartbeat every 5 s, so a run that quiet ended unheard (its end shed under load) or lost
# its engine; followed for ten minutes, every such run's numbers were held that long (issue 91)
_IDLE_FOR = 120.0


@dataclass(slots=True)
class _Run:
    source: str
    heard: float  # when the recorder last received something of it
    ended: bool = False
    written: int = 0  # its missed count as last written to the database
    late: bool = False  # first heard mid-way, and no snapshot of it has come in since
    answer: tuple[tuple[int, int, int, int], set[int]] | None = None  # a snapshot's parts in
    answer_tasks: int = 0  # the tasks of the answer's parts in
    vouched: str | None = None  # what vouches for its source (``_vouches``); None: its word


class RecorderGaps:
    """What a recorder's telemetry lacks: a GapCounter fed with what it receives.

    :meth:`see` is cheap enough for the subscription callback. :meth:`changes`
    and :meth:`written` are the writer's: what changed per source since the
    last write, and that it was written. :meth:`sweep` forgets runs that
    ended a while ago or went quiet (what they missed stays counted).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        max_runs: int = MAX_FOLLOWED,
        ask: Callable[[str, int], object] | None = None,
    ) -> None:
        self.counter = GapCounter(clock)
        self.ask = ask
        """Asks a run's engine for a snapshot after an event (``SnapshotAsker.ask``): for a run
        first heard of mid-way, and while one that has not ended lacks events."""
        self._clock = clock
        self._max_runs = max_runs
        # in the order they were last heard of (a run heard is moved to the end): the first
        # is the one to stop following when a new run comes and there is no room
        self._runs: dict[str, _Run] = {}
        self._touched: set[str] = set()
        self._carried: dict[str, int] = {}  # changes of runs forgotten, not yet written
        self._vouched: dict[str, tuple[str, str]] = {}  # run: (source, what vouches), to write
        self._displaced: dict[str, int] = {}  # run: the lone number it was displaced from
        self.unfollowed = 0
        """Runs no longer followed before their end to make room for newer ones (``max_runs``
        were followed): a gap of theirs after that is not counted."""

    @property
    def missed(self) -> int:
        """Events missed in all since the recorder started, net of late copies."""
        return self.counter.missed

    def see(
        self, envelope: Envelope, now: float, digest: int = 0, vouched: str | None = None
    ) -> Seen:
        """Count the numbers ``envelope`` carries (nothing for one without); a snapshot's
        tasks, and once all its parts are in, what it makes good. ``digest`` stands for its
        content (``hash`` of its payload); ``vouched``, what vouches for its source as the
        run's engine (``_vouches``): such a source takes over a run first heard from one
        nothing vouched for (followed anew from it). The verdict: anything but
        :attr:`~cascade.reader.Seen.NEW` and :attr:`~cascade.reader.Seen.COPY` is a
        message no engine of the run can have sent (counted nowhere here)."""
        body = envelope.body
        run_id, source = envelope.run_id, envelope.source
        runs = self._runs
        run = runs.get(run_id)
        if run is not None and run.source != source:
            if run.vouched is not None or vouched is None:
                return Seen.FOREIGN
            self._forget(run_id)  # taken over: the first speaker was believed no more
            run = runs[run_id] = _Run(source, now, late=True)  # heard anew, as joined late
        if vouched is not None and (run is None or run.vouched is None):
            if run is not None:
                run.vouched = vouched
            self.vouch(envelope, vouched)
        number = (
            body.through
            if isinstance(body, RunSnapshot)
            else (body.last_seq if isinstance(body, Heartbeat) else envelope.seq)
        )
        if not isinstance(number, int):
            if run is not None and isinstance(body, LifecycleEvent):
                run.ended = body.event == "ENGINE_STOPPED" or run.ended  # one without a number
            return Seen.NEW
        if run is None:
            if isinstance(body, RunSnapshot):
                return Seen.UNASKED  # the recorder asks only about the runs it follows
            if not _ids_valid(envelope):
                return Seen.NEW  # never stored either: nothing to follow
            if len(runs) >= self._max_runs:
                self._evict()
            run = runs[run_id] = _Run(source, now, late=envelope.seq != 1, vouched=vouched)
        else:
            del runs[run_id]  # to the end: heard last (O(1): insertion order)
            runs[run_id] = run
            run.heard = now
        if isinstance(body, RunSnapshot):
            seen = self._snapshot(run_id, run, body)
        elif isinstance(body, Heartbeat):
            seen = self.counter.announce(source, run_id, number)
        else:
            seen = self.counter.see(source, run_id, number, digest)
            if seen is Seen.BEYOND and self._displace(run_id, run, number):
                seen = self.counter.see(source, run_id, number, digest)
            if seen is Seen.NEW and isinstance(body, LifecycleEvent):
                run.ended = body.event == "ENGINE_STOPPED" or run.ended
        self._touched.add(run_id)
        if self.ask is not None and not run.ended and (run.late or self.counter.missed_in(run_id)):
            self.ask(run_id, self.counter.known_through(run_id))
        return seen

    def numbered(self, run_id: str) -> bool:
        """Whether an event (or an answer) of ``run_id`` has founded its numbers: a
        heartbeat's ``last_seq`` before that is a claim nothing backs (see
        :meth:`~cascade.reader.GapCounter.announce`)."""
        return self.counter.owner(run_id) is not None

    def _displace(self, run_id: str, run: _Run, number: int) -> bool:
        """Whether the run's numbers rested on one event far above ``number`` (a forger's
        heard first: :meth:`~cascade.reader.GapCounter.lone`): then it is followed anew
        from ``number``, and the history told to set that event aside (:meth:`displaced`)."""
        lone = self.counter.lone(run_id)
        if lone is None or number >= lone:
            return False
        self._displaced[run_id] = lone
        self.counter.forget(run_id)
        run.late, run.answer, run.answer_tasks = True, None, 0
        return True

    def displaced(self) -> dict[str, int]:
        """The runs whose one stored number was displaced since the last call (a number far
        below it came), with that number: for the history (``History.store``'s
        ``displaced``); a write that fails hands them back (:meth:`keep_displaced`)."""
        displaced, self._displaced = self._displaced, {}
        return displaced

    def keep_displaced(self, displaced: dict[str, int]) -> None:
        """What :meth:`displaced` returned, not written: written with the next write."""
        self._displaced = {**displaced, **self._displaced}

    def vouch(self, envelope: Envelope, vouched: str) -> None:
        """Something vouches for ``envelope``'s source as its run's engine: the history is told
        (a shared recorder, which follows no run, tells it so of every such message)."""
        if _ids_valid(envelope):
            self._vouched[envelope.run_id] = (envelope.source, vouched)

    def vouches(self) -> dict[str, tuple[str, str]]:
        """The runs whose source something came to vouch for since the last call, with it and
        what vouches (``(source, vouched)``), for the history (``History.store``'s
        ``vouched``); a write that fails hands them back (:meth:`keep_vouches`)."""
        vouched, self._vouched = self._vouched, {}
        return vouched

    def keep_vouches(self, vouched: dict[str, tuple[str, str]]) -> None:
        """What :meth:`vouches` returned, not written: written with the next write."""
        self._vouched = {**vouched, **self._vouched}

    def ended(self, run_id: str) -> bool:
        """Whether the run ``run_id`` is followed and its end was heard."""
        run = self._runs.get(run_id)
        return run is not None and run.ended

    def owner(self, run_id: str) -> str | None:
        """The source of the run ``run_id`` as followed (``None``: not followed)."""
        run = self._runs.get(run_id)
        return None if run is None else run.source

    def _evict(self) -> None:
        """Stop following the run heard of least recently (what it missed stays counted)."""
        run_id = next(iter(self._runs))
        if not self._runs[run_id].ended:
            self.unfollowed += 1
        self._forget(run_id)

    def _forget(self, run_id: str) -> None:
        run = self._runs.pop(run_id)
        change = self.counter.missed_in(run_id) - run.written
        if change:
            self._carried[run.source] = self._carried.get(run.source, 0) + change
        self.counter.forget(run_id)
        self._touched.discard(run_id)

    def _snapshot(self, run_id: str, run: _Run, body: RunSnapshot) -> Seen:
        """One part of an answer about a run followed: refused whole (its events would be
        stored) when out of what an engine sends (``answer_part_refusal``)."""
        source = run.source
        key = (body.after, body.through, body.last_seq, body.parts)
        if run.answer is None or run.answer[0] != key:
            run.answer, run.answer_tasks = (key, set()), 0
        refusal = answer_part_refusal(body, run.answer_tasks)
        if refusal is not None:
            return refusal
        for task in body.tasks:
            if self.counter.see(source, run_id, task.seq) is Seen.BEYOND:
                return Seen.BEYOND
        run.answer[1].add(body.part)
        run.answer_tasks += len(body.tasks)
        if len(run.answer[1]) >= body.parts:
            seen = self.counter.settle(source, run_id, body.through)
            run.late, run.answer, run.answer_tasks = False, None, 0
            return seen
        return Seen.NEW

    def changes(self) -> tuple[dict[str, SourceGaps], dict[str, int]]:
        """Per source, what changed since the last write (for ``History.store``), and the
        counts to hand back to :meth:`written` once that write is done."""
        per_source: dict[str, int] = dict(self._carried)
        counts: dict[str, int] = {}
        for run_id in self._touched:
            run = self._runs.get(run_id)
            if run is None:
                continue
            missed = self.counter.missed_in(run_id)
            if missed != run.written:
                counts[run_id] = missed
                per_source[run.source] = per_source.get(run.source, 0) + missed - run.written
        now = self._clock()
        gaps = {source: SourceGaps(n, now) for source, n in per_source.items() if n}
        return gaps, counts

    def written(self, counts: dict[str, int]) -> None:
        """What :meth:`changes` returned with ``counts`` is in the database."""
        self._carried.clear()
        for run_id, missed in counts.items():
            run = self._runs.get(run_id)
            if run is not None:
                run.written = missed
        self._touched = {
            run_id
            for run_id in self._touched
            if run_id in self._runs and self.counter.missed_in(run_id) != self._runs[run_id].written
        }

    def unheard_since(self, since: float) -> list[str]:
        """The runs followed that have not ended and were not heard of since ``since``: what
        a reconnection at ``since`` may have left holes in that no later event will show
        (their end among them)."""
        return [run_id for run_id, run in self._runs.items() if not run.ended and run.heard < since]

    def sweep(self) -> None:
        """Forget the runs that ended over a minute ago or were not heard of for two."""
        now = self._clock()
        for run_id, run in list(self._runs.items()):
            if now - run.heard >= (_ENDED_FOR if run.ended else _IDLE_FOR):
                self._forget(run_id)


def _ids_valid(envelope: Envelope) -> bool:
    try:
        validate_id(envelope.run_id, "run_id")
        validate_id(envelope.source, "source")
    except InvalidIdError:
        return False
    return True
