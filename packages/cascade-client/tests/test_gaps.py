"""GapCounter: what a reader missed, from the events' seq, in any order and with copies."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.reader import (
    MAX_DIGESTS,
    MAX_SEQ_JUMP,
    REASON_CONFLICT,
    REASON_FOREIGN,
    GapCounter,
    Refusals,
    Seen,
    ahead,
)

NEW, COPY = Seen.NEW, Seen.COPY


def test_consecutive_events_miss_nothing() -> None:
    """1, 2, 3, ... with copies: nothing missed, copies told apart."""
    gaps = GapCounter(clock=lambda: 100.0)
    assert [gaps.see("a", "r", seq) for seq in (1, 2, 3, 2, 3)] == [NEW, NEW, NEW, COPY, COPY]
    assert gaps.missed == 0
    assert gaps.by_source == {}


def test_a_skipped_number_is_missed_until_it_arrives() -> None:
    """A hole opens at the skip (with when), and a late copy fills it."""
    gaps = GapCounter(clock=lambda: 100.0)
    for seq in (1, 2, 5):
        gaps.see("a", "r", seq)
    assert (gaps.missed, gaps.missed_in("r"), gaps.by_source["a"].since) == (2, 2, 100.0)
    assert gaps.see("a", "r", 4) is NEW
    assert gaps.see("a", "r", 4) is COPY
    assert (gaps.missed, gaps.missed_in("r")) == (1, 1)


def test_a_heartbeat_reveals_what_was_lost_at_the_end() -> None:
    """announce(last_seq) counts the events after the highest seen; they may still come."""
    gaps = GapCounter()
    gaps.see("a", "r", 1)
    gaps.announce("a", "r", 10)
    assert gaps.missed == 9
    gaps.see("a", "r", 10)
    assert gaps.missed == 8
    gaps.announce("a", "r", 5)  # an older heartbeat changes nothing
    assert gaps.missed == 8


def test_counting_starts_where_a_reader_joins() -> None:
    """A reader that joins at 500 misses nothing before; an earlier event arriving late opens
    the numbers between it and 500 (it was there before them)."""
    gaps = GapCounter()
    gaps.see("a", "r", 500)
    assert gaps.missed == 0
    gaps.see("a", "r", 497)
    assert gaps.missed == 2


def test_heartbeat_first_then_events() -> None:
    """A heartbeat before any event: counting starts after its last_seq."""
    gaps = GapCounter()
    gaps.announce("a", "r", 7)
    assert [gaps.see("a", "r", s) for s in (8, 10)] == [NEW, NEW]
    assert gaps.missed == 1


def test_sources_are_summed_and_runs_forgotten_keep_their_count() -> None:
    """Each run counts alone; a source sums its runs; forget() keeps what was missed."""
    gaps = GapCounter()
    for run, seqs in (("r1", (1, 4)), ("r2", (1, 3)), ("r3", (1, 2))):
        for seq in seqs:
            gaps.see("a" if run != "r3" else "b", run, seq)
    assert {s: g.missed for s, g in gaps.by_source.items()} == {"a": 3}
    gaps.forget("r1")
    assert gaps.missed_in("r1") == 0
    assert gaps.by_source["a"].missed == 3
    gaps.see("a", "r1", 10)  # a forgotten run is followed again from scratch
    assert gaps.by_source["a"].missed == 3


def test_memory_is_bounded_and_lost_holes_stay_missed() -> None:
    """Past MAX_HOLES holes the oldest are written off: still counted, never filled."""
    gaps = GapCounter()
    holes = GapCounter.MAX_HOLES
    for seq in range(1, 2 * (holes + 10), 2):  # every other number
        gaps.see("a", "r", seq)
    assert gaps.missed == holes + 9
    assert gaps.see("a", "r", 2) is COPY  # its hole was written off
    assert gaps.missed == holes + 9


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=400),
    loss=st.floats(min_value=0, max_value=1),
    copies=st.integers(min_value=0, max_value=30),
    shuffle=st.booleans(),
    seed=st.integers(),
)
def test_missed_is_exactly_what_never_arrived(
    total: int, loss: float, copies: int, shuffle: bool, seed: int
) -> None:
    """Any loss, copies and order (up to MAX_HOLES holes): missed counts the numbers never seen
    from the lowest seen to the last announced."""
    rng = random.Random(seed)
    arrived = [seq for seq in range(1, total + 1) if rng.random() >= loss]
    sent = arrived + [rng.choice(arrived) for _ in range(copies)] if arrived else []
    if shuffle:
        rng.shuffle(sent)
    gaps = GapCounter()
    for seq in sent:
        gaps.see("a", "r", seq)
    gaps.announce("a", "r", total)
    expected = total - min(arrived) + 1 - len(set(arrived)) if arrived else 0
    assert gaps.missed == gaps.missed_in("r") == expected


def test_a_snapshot_settles_what_was_missed_up_to_its_end() -> None:
    """settle(through): holes up to there are made good (the count falls back), those after
    stay; a late copy of a settled number is a copy; known_through says how far it is whole."""
    gaps = GapCounter(clock=lambda: 100.0)
    for seq in (1, 3, 6, 10):
        gaps.see("a", "r", seq)
    assert (gaps.missed_in("r"), gaps.known_through("r")) == (6, 1)
    gaps.settle("a", "r", 7)
    assert (gaps.missed_in("r"), gaps.by_source["a"].missed, gaps.known_through("r")) == (2, 2, 7)
    assert gaps.see("a", "r", 5) is COPY  # settled: a copy
    assert gaps.see("a", "r", 8) is NEW
    gaps.settle("a", "r", 12)
    assert (gaps.missed, gaps.known_through("r")) == (0, 12)


def test_a_late_joiner_settled_short_still_lacks_the_rest() -> None:
    """Joined at 50, an answer cut at 20: 21 to 49 are missed (asked for again), not forgotten."""
    gaps = GapCounter(clock=lambda: 100.0)
    gaps.see("a", "r", 50)
    assert (gaps.missed_in("r"), gaps.known_through("r")) == (0, 0)  # joined late: nothing known
    gaps.settle("a", "r", 20)
    assert (gaps.missed_in("r"), gaps.known_through("r")) == (29, 20)
    gaps.settle("a", "r", 50)
    assert (gaps.missed_in("r"), gaps.known_through("r")) == (0, 50)


def test_a_run_belongs_to_the_source_of_its_first_number() -> None:
    """Another source's numbers for the run are refused, whatever they say: they fill no hole
    and open none (a second engine sharing a run id, or a forger)."""
    gaps = GapCounter()
    gaps.see("engine", "r", 1)
    gaps.see("engine", "r", 3)
    assert gaps.see("attacker", "r", 2) is Seen.FOREIGN
    assert gaps.see("attacker", "r", 9) is Seen.FOREIGN
    assert gaps.announce("attacker", "r", 50) is Seen.FOREIGN
    assert gaps.settle("attacker", "r", 3) is Seen.FOREIGN
    assert gaps.missed_in("r") == 1
    assert gaps.owner("r") == "engine"
    assert "attacker" not in gaps.by_source


def test_a_second_message_with_a_seen_number_is_a_conflict_unless_it_is_a_copy() -> None:
    """Two different messages numbered alike are a conflict, whichever came first; a copy (the
    same content) is not; without a digest a reader cannot tell, and takes a copy."""
    gaps = GapCounter()
    assert gaps.see("a", "r", 1, digest=11) is NEW
    assert gaps.see("a", "r", 3, digest=33) is NEW
    assert gaps.see("a", "r", 3, digest=33) is COPY
    assert gaps.see("a", "r", 3, digest=99) is Seen.CONFLICT
    assert gaps.see("a", "r", 3) is COPY
    assert gaps.see("a", "r", 2, digest=22) is NEW  # a late one fills its hole
    assert gaps.see("a", "r", 2, digest=23) is Seen.CONFLICT  # a forged late one does not
    assert gaps.missed_in("r") == 0


def test_a_run_whose_numbering_restarts_is_a_conflict_however_long_it_ran() -> None:
    """seq 1 is remembered for good: a restart of the numbering is flagged even after more
    events than a reader remembers the content of."""
    gaps = GapCounter()
    for seq in range(1, MAX_DIGESTS + 100):
        gaps.see("a", "r", seq, digest=seq)
    assert gaps.see("a", "r", 1, digest=-1) is Seen.CONFLICT
    assert gaps.see("a", "r", 1, digest=1) is COPY


def test_numbers_no_engine_can_have_sent_are_refused_not_counted_as_missed() -> None:
    """A jump over MAX_SEQ_JUMP, up or down, from an event, a heartbeat or a snapshot, opens
    no hole: seq 10**12 after seq 1 is a conflict, not a trillion lost events."""
    gaps = GapCounter()
    gaps.see("a", "r", 1)
    assert gaps.see("a", "r", 10**12) is Seen.BEYOND
    assert gaps.announce("a", "r", 2**63 - 1) is Seen.BEYOND
    assert gaps.settle("a", "r", 2**63 - 1) is Seen.BEYOND
    assert gaps.see("a", "r", 1 + MAX_SEQ_JUMP) is NEW  # the largest hole one number may open
    assert gaps.missed == MAX_SEQ_JUMP - 1
    late = GapCounter()
    late.see("a", "r", 10**12)  # a reader that joins late counts from what it first sees
    assert late.see("a", "r", 1) is Seen.BEYOND
    assert late.missed == 0


def test_refusals_are_counted_by_source_and_reason_and_bounded() -> None:
    refusals = Refusals()
    refusals.count("attacker", REASON_FOREIGN, 3)
    refusals.count("attacker", REASON_CONFLICT)
    assert refusals.total == 4
    assert refusals.of("attacker") == 4
    assert refusals.describe("attacker") == "3 foreign source, 1 conflict"
    for n in range(5000):
        refusals.count(f"s{n}", REASON_FOREIGN)
    assert len(refusals.by_source) <= 1025
    assert refusals.total == 5004


def test_a_timestamp_is_ahead_beyond_the_allowed_skew() -> None:
    assert not ahead(1000.0 + 299, 1000.0)
    assert ahead(1000.0 + 301, 1000.0)
    assert not ahead(0.0, 1000.0)


def test_a_lone_base_is_told_and_no_answer_opens_a_hole_over_the_bound() -> None:
    """A run whose count rests on one event (not its first) says so until another number comes;
    an answer settling far below its lowest number is refused, not a hole of 2**63."""
    counter = GapCounter()
    assert counter.see("e", "r", 2**63 - 1) is Seen.NEW
    assert counter.lone("r") == 2**63 - 1
    assert counter.settle("e", "r", 50) is Seen.BEYOND
    assert counter.missed == 0
    counter.forget("r")
    counter.see("e", "r", 1)
    assert counter.lone("r") is None  # the run's start: no lone base
    counter.forget("r")
    counter.see("e", "r", 40)
    counter.see("e", "r", 41)
    assert counter.lone("r") is None
