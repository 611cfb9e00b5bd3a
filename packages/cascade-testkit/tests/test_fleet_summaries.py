"""The simulated engines' summaries, read back as a reader would and held against their events.

The engines of one worker are driven on a clock of the test's own (``EngineShare``, no broker,
no sleeps); every message they publish is kept in order. The truth is rebuilt from the events
alone (each task's latest state, each run's end) and each engine's summaries, decoded with
``decode_summary``, must agree with it.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from cascade.interfaces import LifecycleEvent, TaskStateEvent, decode_envelope
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    TaskTally,
    decode_summary,
    misplaced_runs,
    summary_topic,
)
from cascade.testkit import (
    SUMMARY_GAP,
    EngineShare,
    FleetSettings,
    Outgoing,
    SimulatedEngine,
    final_tallies,
)

MAX_SUMMARY_RUNS = 20  # the protocol's bound, as docs/protocol.md states it

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
TICK = 0.01
HEARTBEAT = 2.0


@dataclass
class RunTruth:
    """A run as its events tell it: each task's latest state, its end, its last seq."""

    planned: int = 0
    tasks: dict[str, str] = field(default_factory=dict)
    status: str = "Running"
    cancelled: bool = False
    last_seq: int = 0

    def tally(self) -> TaskTally:
        states = Counter(self.tasks.values())
        running, blocked = states["RUNNING"], states["BLOCKED"]
        cancelled = states["CANCELLED"]
        return TaskTally(
            running=running,
            blocked=blocked,
            pending=self.planned - len(self.tasks),
            completed=states["COMPLETED"],
            failed=states["FAILED"] + cancelled,
            cancelled=cancelled,
        )


class Published:
    """Every message the engines published, in order: runs rebuilt from the events, and
    each engine's summaries."""

    def __init__(self, fail_every: int = 0) -> None:
        self.runs: dict[str, dict[str, RunTruth]] = defaultdict(dict)  # source -> run id -> run
        self.summaries: dict[str, list[EngineSummary]] = defaultdict(list)
        self.placed: Counter[str] = Counter()  # summaries per org and project, by source
        self.dropped: Counter[str] = Counter()
        self._fail_every = fail_every
        self._count = 0

    def __call__(self, message: Outgoing) -> bool:
        topic, payload, qos, retain = message
        if "/summary/" in topic:
            summary = decode_summary(payload)
            assert (qos, retain) == (0, True)
            if topic != summary_topic(summary.source, PREFIX):  # its runs of one org and project
                assert topic.endswith("/" + summary.source)
                assert summary.listed
                assert misplaced_runs(summary, topic, PREFIX) == 0
                self.placed[summary.source] += 1
                return True
            self.summaries[summary.source].append(summary)
            return True
        if not topic.endswith("/events"):
            return True
        envelope = decode_envelope(payload)
        run = self.runs[envelope.source].setdefault(envelope.run_id, RunTruth())
        assert envelope.seq == run.last_seq + 1
        run.last_seq = envelope.seq
        body = envelope.body
        if isinstance(body, TaskStateEvent):
            run.tasks[body.task_id] = body.reader_state
        elif isinstance(body, LifecycleEvent) and body.event == "ENGINE_STARTED":
            run.planned = body.tasks or 0
        elif isinstance(body, LifecycleEvent):
            run.status, run.cancelled = body.status or "", body.cancelled is True
        self._count += 1
        if self._fail_every and self._count % self._fail_every == 0:
            self.dropped[envelope.source] += 1  # as if the worker were not connected
            return False
        return True

    def truth(self, source: str) -> tuple[RunTally, TaskTally]:
        """The engine's runs by status and tasks by state, from its events."""
        runs = list(self.runs[source].values())
        statuses = Counter(run.status for run in runs)
        tally = RunTally(
            running=statuses["Running"],
            succeeded=statuses["Succeeded"],
            failed=statuses["Failed"],
            cancelled=sum(run.cancelled for run in runs),
        )
        tasks = TaskTally()
        for run in runs:
            tasks = tasks + run.tally()
        return tally, tasks


PREFIX = "fleet-summaries-test"


def drive(
    seconds: float,
    fail_every: int = 0,
    tasks: int = 4,
    per_round: int = 5,
    engines: int = 10,
    without_summaries: float = 0.0,
) -> tuple[list[SimulatedEngine], Published, float]:
    """``engines`` engines of runs of ``tasks`` tasks stepped ``per_round`` events every TICK
    for ``seconds`` (by default runs start and end several times a second on each engine),
    then stopped."""
    settings = FleetSettings(
        "localhost", 1883, engines=engines, processes=1, tasks_per_run=tasks, concurrency=2,
        fail_ratio=0.2, block_ratio=0.2, heartbeat_interval=HEARTBEAT, prefix=PREFIX, seed=34,
        without_summaries=without_summaries,
    )  # fmt: skip
    rng = random.Random(34)
    tally: Counter[str] = Counter()
    fleet = [SimulatedEngine(settings, n, 1_000 + n, rng, tally) for n in range(engines)]
    published = Published(fail_every)
    share = EngineShare(fleet, rng, published, HEARTBEAT, 0.0)
    rounds = round(seconds / TICK)
    for n in range(rounds):
        now = n * TICK
        share.round(now, 0.0, iso(now), per_round)
    share.stop(rounds * TICK, iso(rounds * TICK))
    return fleet, published, rounds * TICK


def iso(now: float) -> str:
    return (EPOCH + timedelta(seconds=now)).isoformat()


def seconds(ts: str) -> float:
    return (datetime.fromisoformat(ts) - EPOCH).total_seconds()


def test_the_last_summaries_count_what_the_events_say() -> None:
    """At the stop, each engine's last summary counts its runs by outcome and its tasks by
    state as its events tell them, its events as the sum of its runs' last seq, and agrees
    with final_tallies of the engine's own counts; its runs listed are the latest ended,
    newest first, each as its events tell it."""
    fleet, published, _ = drive(30.0)
    assert len(published.summaries) == len(fleet)
    for engine in fleet:
        last = published.summaries[engine.source][-1]
        runs, tasks = published.truth(engine.source)
        assert runs.running == 0, engine.source
        assert (last.runs, last.tasks) == (runs, tasks), engine.source
        assert (last.runs, last.tasks) == final_tallies(engine.kinds), engine.source
        assert tasks.completed, "tasks of every outcome, or the test proves little"
        assert tasks.failed, "tasks of every outcome, or the test proves little"
        truths = published.runs[engine.source]
        assert last.events == sum(run.last_seq for run in truths.values())
        assert (last.session, last.dropped, last.more_live) == (engine.session, 0, 0)
        ended = list(truths)[::-1][:MAX_SUMMARY_RUNS]  # newest first
        assert len(truths) > MAX_SUMMARY_RUNS
        assert [run.run_id for run in last.listed] == ended
        for listed in last.listed:
            truth = truths[listed.run_id]
            assert (listed.status, listed.cancelled) == (truth.status, truth.cancelled)
            assert (listed.tasks, listed.last_seq) == (truth.tally(), truth.last_seq)
            assert listed.ended is not None
            assert listed.planned == truth.planned


def test_a_stop_that_cancels_runs_is_counted() -> None:
    """Runs still live at the stop end cancelled, and the last summaries say so."""
    _, published, _ = drive(3.0)
    last = [summaries[-1] for summaries in published.summaries.values()]
    assert sum(summary.runs.cancelled for summary in last) > 0
    assert sum(summary.tasks.cancelled for summary in last) > 0
    assert any(run.cancelled for summary in last for run in summary.listed[:1])


def test_live_summaries_count_the_live_run_as_it_stands() -> None:
    """Every summary before the last lists the live run first (if any) as its events so far
    tell it: tasks running, blocked and pending; the totals add it to the ended runs."""
    published = Published()
    checked = 0

    def check(message: Outgoing) -> bool:
        nonlocal checked
        sent = published(message)
        if message[0].count("/") == 2 and "/summary/" in message[0]:  # an engine's own
            summary = published.summaries[message[0].rsplit("/", 1)[1]][-1]
            runs, tasks = published.truth(summary.source)
            assert (summary.runs, summary.tasks) == (runs, tasks)
            if runs.running:
                live = summary.listed[0]
                truth = published.runs[summary.source][live.run_id]
                assert (live.status, live.ended) == ("Running", None)
                assert live.tasks == truth.tally()
                checked += 1
        return sent

    settings = FleetSettings(
        "localhost", 1883, engines=5, processes=1, tasks_per_run=6, concurrency=3,
        block_ratio=0.3, heartbeat_interval=HEARTBEAT, prefix=PREFIX, seed=7,
    )  # fmt: skip
    rng = random.Random(7)
    fleet = [SimulatedEngine(settings, n, n + 1, rng, Counter()) for n in range(5)]
    share = EngineShare(fleet, rng, check, HEARTBEAT, 0.0)
    for n in range(1_000):
        share.round(n * TICK, 0.0, iso(n * TICK), 1)
    assert checked > 20
    # each summary is published per org and project of its runs before its own (readers
    # take the runs from there): one each time a summary lists runs
    assert sum(published.placed.values()) >= checked


@pytest.mark.parametrize(("tasks", "per_round"), [(4, 5), (200, 1)], ids=["short", "long"])
def test_an_engine_publishes_at_most_one_summary_a_second_but_its_last(
    tasks: int, per_round: int
) -> None:
    """Whether runs start and end several times a second per engine (short) or last longer
    than the test (long): summaries go a second apart at least (the last, at the stop,
    excepted), at least once a heartbeat interval and a second while the engine has a run,
    and their rate is the events between two summaries over the time between them."""
    fleet, published, ended = drive(20.0, tasks=tasks, per_round=per_round)
    for engine in fleet:
        summaries = published.summaries[engine.source]
        stamps = [seconds(summary.ts) for summary in summaries]
        gaps = [b - a for a, b in itertools.pairwise(stamps[:-1])]
        assert min(gaps) >= SUMMARY_GAP - 1e-6, engine.source
        assert max(gaps) <= HEARTBEAT + SUMMARY_GAP + TICK, engine.source
        assert abs(stamps[-1] - ended) < 1e-6
        assert len(summaries) <= ended / SUMMARY_GAP + 2
        for a, b in itertools.pairwise(summaries):
            span = seconds(b.ts) - seconds(a.ts)
            if span > 0:
                assert b.events_per_s == pytest.approx((b.events - a.events) / span, rel=1e-3)


def test_the_events_an_engine_could_not_send_are_counted_as_dropped() -> None:
    """Events its worker could not send are the engine's ``dropped``."""
    fleet, published, _ = drive(5.0, fail_every=7)
    assert sum(published.dropped.values()) > 0
    for engine in fleet:
        assert published.summaries[engine.source][-1].dropped == published.dropped[engine.source]


def test_a_run_stopped_after_its_last_task_ends_cancelled() -> None:
    """A run whose tasks have all ended but which has not sent its end yet is cancelled by
    the stop: its summary counts it cancelled, with no task cancelled."""
    settings = FleetSettings("localhost", 1883, engines=1, processes=1, tasks_per_run=3,
                             fail_ratio=0.0, block_ratio=0.0, prefix=PREFIX)  # fmt: skip
    engine = SimulatedEngine(settings, 0, 1, random.Random(1), Counter())
    published = Published()

    def all_completed() -> bool:
        run = published.runs[engine.source].get(engine.run_id or "")
        return run is not None and list(run.tasks.values()) == ["COMPLETED"] * 3

    while not all_completed():
        published(engine.step(0.0, 0.0, iso(0.0)))
    share = EngineShare([engine], random.Random(1), published, HEARTBEAT, 0.0)
    share.stop(1.0, iso(1.0))
    last = published.summaries[engine.source][-1]
    assert last.runs == RunTally(failed=1, cancelled=1)
    assert last.tasks == TaskTally(completed=3)
    assert (last.listed[0].status, last.listed[0].cancelled) == ("Failed", True)


@pytest.mark.parametrize(("share", "silent"), [(0.1, 1), (0.3, 3), (1.0, 10)])
def test_a_share_of_the_engines_sends_no_summary(share: float, silent: int) -> None:
    """``without_summaries``: that share of the engines, spread over the fleet, publishes no
    summary (their events and heartbeats go as ever); the others' agree with their events."""
    fleet, published, _ = drive(10.0, without_summaries=share)
    quiet = [e.source for e in fleet if e.source not in published.summaries]
    assert len(quiet) == silent
    assert all(not engine.summarises for engine in fleet if engine.source in quiet)
    for engine in fleet:
        if engine.source in published.summaries:
            last = published.summaries[engine.source][-1]
            assert (last.runs, last.tasks) == final_tallies(engine.kinds), engine.source
        assert engine.kinds, "every engine ran"


def test_a_share_that_is_no_share_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        FleetSettings("localhost", 1883, without_summaries=1.5)


@pytest.mark.parametrize("within", [None, 0.5])
def test_heartbeats_fall_within_the_seconds_asked_then_every_interval(
    within: float | None,
) -> None:
    """``beats_within``: every engine's first heartbeat falls in the runs' first
    ``beats_within`` seconds (a fleet started together beats together), the next ones every
    interval after; by default they are spread over the whole interval."""
    engines = 200
    settings = FleetSettings(
        "localhost", 1883, engines=engines, processes=1, tasks_per_run=10_000, concurrency=2,
        heartbeat_interval=HEARTBEAT, prefix=PREFIX, seed=66, beats_within=within,
    )  # fmt: skip
    rng = random.Random(66)
    fleet = [SimulatedEngine(settings, n, 1_000 + n, rng, Counter()) for n in range(engines)]
    beats: list[tuple[float, str]] = []
    now = 0.0

    def publish(message: Outgoing) -> bool:
        if message[0].endswith("/heartbeat"):
            beats.append((now, decode_envelope(message[1]).source))
        return True

    share = EngineShare(fleet, rng, publish, HEARTBEAT, 0.0, within)
    for engine in fleet:
        engine.step(0.0, 0.0, iso(0.0))  # every engine's run starts: it beats from now on
    for n in range(round(2 * HEARTBEAT / TICK)):
        now = n * TICK
        share.round(now, 0.0, iso(now), 0)
    by_engine: dict[str, list[float]] = defaultdict(list)
    for at, source in beats:
        by_engine[source].append(at)
    assert len(by_engine) == engines
    firsts = [times[0] for times in by_engine.values()]
    if within is None:
        assert max(firsts) > HEARTBEAT - 0.1  # the last engine's comes late in the interval
    else:
        assert max(firsts) <= within + TICK
    for times in by_engine.values():  # then every interval
        assert all(abs(b - a - HEARTBEAT) <= TICK for a, b in itertools.pairwise(times))


def test_beats_within_more_than_the_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="beats_within"):
        FleetSettings("localhost", 1883, heartbeat_interval=5.0, beats_within=6.0)
