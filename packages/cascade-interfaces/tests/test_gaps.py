"""GapCounter: what a reader missed, from the events' seq, in any order and with copies."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.interfaces import GapCounter


def test_consecutive_events_miss_nothing() -> None:
    """1, 2, 3, ... with copies: nothing missed, copies told apart."""
    gaps = GapCounter(clock=lambda: 100.0)
    assert [gaps.see("a", "r", seq) for seq in (1, 2, 3, 2, 3)] == [True, True, True, False, False]
    assert gaps.missed == 0
    assert gaps.by_source == {}


def test_a_skipped_number_is_missed_until_it_arrives() -> None:
    """A hole opens at the skip (with when), and a late copy fills it."""
    gaps = GapCounter(clock=lambda: 100.0)
    for seq in (1, 2, 5):
        gaps.see("a", "r", seq)
    assert (gaps.missed, gaps.missed_in("r"), gaps.by_source["a"].since) == (2, 2, 100.0)
    assert gaps.see("a", "r", 4) is True
    assert gaps.see("a", "r", 4) is False
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
    assert [gaps.see("a", "r", s) for s in (8, 10)] == [True, True]
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
    assert gaps.see("a", "r", 2) is False  # its hole was written off
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
    assert gaps.see("a", "r", 5) is False  # settled: a copy
    assert gaps.see("a", "r", 8) is True
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
