"""Counting what a reader missed, from the ``seq`` numbers of a run's events, and refusing
numbers no engine of the run can have sent."""

from __future__ import annotations

import bisect
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_DIGESTS", "MAX_HOLES", "MAX_SEQ_JUMP", "GapCounter", "Seen", "SourceGaps"]

MAX_HOLES = 1024
"""Holes (runs of consecutive missing seqs) remembered per run; past that the oldest are lost
for good: a late copy of what they held is no longer told from a copy of one seen."""

MAX_SEQ_JUMP = 1_000_000
"""The largest hole one number may open (a ``seq``, a heartbeat's ``last_seq``, a snapshot's
``through`` that far past what was seen, or that far below it): a run's engine cannot have
sent a million events a reader never saw between two it did (half a minute at the fastest
engine's rate), so such a number is a conflict, refused, not a loss to count."""

MAX_DIGESTS = 16_384
"""The latest numbers per run (at least) whose content a reader remembers to tell a copy (same
content) from a conflict (another message with the same number); an older number's second
message is taken for a copy."""


_TRIM_AT = 2 * MAX_DIGESTS


class Seen(str, enum.Enum):
    """What a reader makes of one numbered message of a run (:meth:`GapCounter.see`)."""

    NEW = "new"
    """First seen: apply it."""
    COPY = "copy"
    """A copy of one seen (resent after a lost connection, or heard twice): change nothing."""
    CONFLICT = "conflict"
    """Another message with a number already seen (a forgery, or a run whose numbering
    restarted): refused, and counted by the reader, never resolved by arrival order."""
    FOREIGN = "foreign source"
    """From another source than the run's (the source of its first numbered message): refused."""
    BEYOND = "seq out of bounds"
    """A number no engine of the run can have sent yet (:data:`MAX_SEQ_JUMP`): refused."""
    INCONSISTENT = "numbers that disagree"
    """A message whose own numbers contradict each other (an answer listing a task numbered
    outside it, a summary counting more live runs than it accounts for): refused."""
    UNASKED = "answer not asked for"
    """An engine's answer (a run's snapshot) about a run the reader did not ask about:
    refused, so that only the runs a reader follows can cost it an answer's memory."""


_NEW, _COPY = Seen.NEW, Seen.COPY  # a class attribute of an Enum is slow to look up, per event


@dataclass
class SourceGaps:
    """What a reader missed of one source's (engine's) events: ``missed`` since ``since``."""

    missed: int = 0
    since: float | None = None  # epoch seconds of the first gap seen


@dataclass
class _Stream:
    source: str
    first: int  # the lowest seq seen
    high: int  # the highest seq seen (or announced by a heartbeat)
    starts: list[int] = field(default_factory=list)  # holes [start, stop) in (first, high),
    stops: list[int] = field(default_factory=list)  # sorted and apart
    missed: int = 0
    digests: dict[int, int] = field(default_factory=dict)  # seq -> content, the latest seen
    origin: int = 0  # seq 1's content, kept for good: a run whose numbering restarts shows


class GapCounter:
    """Counts, per run, the events a reader has not seen, sums them per source, and refuses
    numbers the run's engine cannot have sent.

    A run's events carry ``seq`` 1, 2, 3, ... (``Envelope.seq``). Feed every
    event's with :meth:`see`, and every heartbeat's ``last_seq`` with
    :meth:`announce` (it reveals events lost at the end of a burst, which no
    later seq would). A seq above the highest seen (or below the lowest) opens
    a hole for each number skipped; one that arrives late (after a
    reconnection, or out of order on a broker that does not keep it) fills its
    hole; a copy changes nothing. So :attr:`missed` is exact once the run's
    messages are in, whatever the order they came in. Counting starts at the
    lowest seq a reader sees: joining a run late misses nothing before it, and
    a run's first event (``ENGINE_STARTED``, QoS 1, seq 1) makes a reader that
    was there from the start count from 1.

    Whoever may publish can send any number, so each gets a verdict (:class:`Seen`): a
    run belongs to the source of its first numbered message (another's numbers are
    :attr:`Seen.FOREIGN`); a number that would open a hole over :data:`MAX_SEQ_JUMP` is
    :attr:`Seen.BEYOND`; a second message with a number seen is a :attr:`Seen.COPY` when
    its ``digest`` (any int that stands for its content, ``0``: unknown) is the first's,
    else a :attr:`Seen.CONFLICT`. Only :attr:`Seen.NEW` changes a count. Memory is
    bounded: at most :data:`MAX_HOLES` holes and :data:`MAX_DIGESTS` digests per run, and
    only the runs not yet :meth:`forget`-ten.
    """

    MAX_HOLES = MAX_HOLES

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        self.by_source: dict[str, SourceGaps] = {}
        """What was missed from each source, runs forgotten included."""

    @property
    def missed(self) -> int:
        """Events missed in all."""
        return sum(gaps.missed for gaps in self.by_source.values())

    def missed_in(self, run_id: str) -> int:
        """Events of ``run_id`` missed (0 for a run not followed, or forgotten)."""
        stream = self._streams.get(run_id)
        return 0 if stream is None else stream.missed

    def owner(self, run_id: str) -> str | None:
        """The source ``run_id``'s numbers are taken from (``None``: none seen, or forgotten)."""
        stream = self._streams.get(run_id)
        return None if stream is None else stream.source

    def see(self, source: str, run_id: str, seq: int, digest: int = 0) -> Seen:
        """Count event ``seq`` of ``run_id`` from ``source``; ``digest`` stands for its content."""
        stream = self._streams.get(run_id)
        if stream is None:
            stream = self._streams[run_id] = _Stream(source, seq, seq)
            self._remember(stream, seq, digest)
            return _NEW
        if source != stream.source:
            return Seen.FOREIGN
        high = stream.high
        if seq == high + 1:  # the usual case: the next one (what _remember does, inline)
            stream.high = seq
            if digest:
                if seq == 1:
                    stream.origin = digest
                else:
                    digests = stream.digests
                    digests[seq] = digest
                    if len(digests) >= _TRIM_AT:
                        self._trim(stream)
            return _NEW
        if seq > high:
            if seq - high > MAX_SEQ_JUMP:
                return Seen.BEYOND
            self._open(stream, high + 1, seq)
            stream.high = seq
            self._remember(stream, seq, digest)
            return _NEW
        if seq < stream.first:
            if stream.first - seq > MAX_SEQ_JUMP:
                return Seen.BEYOND
            self._open(stream, seq + 1, stream.first)
            stream.first = seq
            self._remember(stream, seq, digest)
            return _NEW
        starts, stops = stream.starts, stream.stops
        index = bisect.bisect_right(starts, seq) - 1
        if index < 0 or seq >= stops[index]:  # seen already
            known = stream.origin if seq == 1 else stream.digests.get(seq, 0)
            return Seen.CONFLICT if digest and known and digest != known else _COPY
        start, stop = starts[index], stops[index]
        if start == seq and stop == seq + 1:
            del starts[index], stops[index]
        elif start == seq:
            starts[index] = seq + 1
        elif stop == seq + 1:
            stops[index] = seq
        else:
            stops[index] = seq
            starts.insert(index + 1, seq + 1)
            stops.insert(index + 1, stop)
        stream.missed -= 1
        self.by_source[stream.source].missed -= 1
        self._remember(stream, seq, digest)
        return _NEW

    def announce(self, source: str, run_id: str, last_seq: int) -> Seen:
        """The run's engine has sent every event up to ``last_seq`` (a heartbeat says so).

        Of a run none of whose events was seen yet it changes nothing: a claim with no event
        founds no number base (counting starts at the first event seen), so a heartbeat of a
        forger claiming ``last_seq`` 2**63 - 1, heard first by a reader that joins the run, is
        refused as :attr:`Seen.BEYOND` once the run's real events have set the base, instead
        of turning every real event into one out of bounds.
        """
        stream = self._streams.get(run_id)
        if stream is None:
            return _NEW
        if source != stream.source:
            return Seen.FOREIGN
        if last_seq - stream.high > MAX_SEQ_JUMP:
            return Seen.BEYOND
        if last_seq > stream.high:
            self._open(stream, stream.high + 1, last_seq + 1)
            stream.high = last_seq
            return _NEW
        return _COPY

    def lone(self, run_id: str) -> int | None:
        """The one number ``run_id``'s count rests on, when a single event founded it (not the
        run's first, ``seq`` 1) and no other number came since; else ``None``.

        A reader that joins a run late takes its first event's number as the base: when that
        event was a forger's (``seq`` 2**63 - 1, say), every real event after it is
        :attr:`Seen.BEYOND`. A number far below a lone base is the likelier one (an engine
        numbers from 1, at a bounded rate): a reader then forgets the run and hears it anew
        from that number (the lone one counted refused), rather than refusing the engine."""
        stream = self._streams.get(run_id)
        if stream is None or stream.first != stream.high or stream.first == 1:
            return None
        return stream.first

    def known_through(self, run_id: str) -> int:
        """The highest ``seq`` up to which this reader has every event of ``run_id`` (or knows
        the state they made, :meth:`settle`); ``0`` when it lacks some from the run's first."""
        stream = self._streams.get(run_id)
        if stream is None or stream.first > 1:
            return 0
        return stream.starts[0] - 1 if stream.starts else stream.high

    def settle(self, source: str, run_id: str, through: int) -> Seen:
        """The reader now knows the state ``run_id``'s events made up to ``through`` (its
        engine's snapshot said it): what it missed up to there is no longer missed, and a
        late copy of one of those events is a copy."""
        stream = self._streams.get(run_id)
        if stream is None:
            self._streams[run_id] = _Stream(source, 1, through)
            return _NEW
        if source != stream.source:
            return Seen.FOREIGN
        if through - stream.high > MAX_SEQ_JUMP or stream.first - through > MAX_SEQ_JUMP:
            return Seen.BEYOND  # no hole over MAX_SEQ_JUMP, whichever side it would open on
        if stream.first > through + 1:  # an answer cut short: the reader still lacks these
            self._open(stream, through + 1, stream.first)
        starts, stops = stream.starts, stream.stops
        settled = 0
        while starts and starts[0] <= through:
            stop = min(stops[0], through + 1)
            settled += stop - starts[0]
            if stop == stops[0]:
                del starts[0], stops[0]
            else:
                starts[0] = stop
        stream.first = 1
        stream.high = max(stream.high, through)
        if settled:
            stream.missed -= settled
            self.by_source[stream.source].missed -= settled
        return _NEW

    def forget(self, run_id: str) -> None:
        """Stop following ``run_id`` (what it missed stays in :attr:`by_source`)."""
        self._streams.pop(run_id, None)

    @staticmethod
    def _remember(stream: _Stream, seq: int, digest: int) -> None:
        if not digest:
            return
        if seq == 1:
            stream.origin = digest
            return
        stream.digests[seq] = digest
        if len(stream.digests) >= _TRIM_AT:
            GapCounter._trim(stream)

    @staticmethod
    def _trim(stream: _Stream) -> None:
        """Keep the latest :data:`MAX_DIGESTS` (now and then: O(1) a number)."""
        oldest = stream.high - MAX_DIGESTS
        stream.digests = {n: d for n, d in stream.digests.items() if n > oldest}

    def _open(self, stream: _Stream, start: int, stop: int) -> None:
        """Seqs ``start`` to ``stop - 1`` were skipped."""
        if stop <= start:
            return
        gaps = self.by_source.get(stream.source)
        if gaps is None:
            gaps = self.by_source[stream.source] = SourceGaps()
        if gaps.since is None:
            gaps.since = self._clock()
        gaps.missed += stop - start
        stream.missed += stop - start
        starts, stops = stream.starts, stream.stops
        index = bisect.bisect_left(starts, start)
        starts.insert(index, start)
        stops.insert(index, stop)
        if len(starts) > MAX_HOLES:  # the oldest hole is lost for good
            del starts[0], stops[0]
