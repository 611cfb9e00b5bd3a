"""Engines' summaries: the schema's bounds, and what the reader model makes of them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

import msgspec
import pytest

from cascade.connector_kit.testing import received, telemetry
from cascade.interfaces import (
    InvalidMessageError,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    status_topic,
)
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    decode_summary,
    misplaced_runs,
    placed_summary_filter,
    summary_filter,
    summary_topic,
)
from cascade.reader import MAX_MORE_LIVE, MAX_PLACES, ReaderModel

MAX_SUMMARY_PAYLOAD_BYTES = 64 * 1024  # the protocol's bound, as docs/protocol.md states it


def _summary(source: str, *, ts: datetime | None = None, **fields: object) -> EngineSummary:
    """A summary as an engine sends it: its live runs not listed are said in ``more_live``."""
    stamp = (ts or datetime.now(timezone.utc)).isoformat()
    said = EngineSummary(source=source, ts=stamp, **fields)  # type: ignore[arg-type]
    if "more_live" not in fields:
        listed_live = sum(run.status == "Running" for run in said.listed)
        said.more_live = max(0, said.runs.running - listed_live)
    return said


def _running(task_id: str) -> TaskStateEvent:
    return TaskStateEvent(task_id=task_id, task_name=task_id, state="RUNNING")


def _on_topic(summary: EngineSummary, level: str | None = None) -> Message:
    return received(summary_topic(level or summary.source), summary, retain=True)


def test_topic_and_filter_name_one_source_level() -> None:
    assert summary_topic("host/1#") == "cascade/summary/host%2F1%23"
    assert summary_filter("acme") == "acme/summary/+"


def test_a_summary_round_trips_and_bad_ones_are_refused_by_field() -> None:
    run = SummaryRun(
        run_id="r1",
        org_id="o",
        project_id="p",
        status="Running",
        started="2026-11-24T10:00:00+00:00",
        tasks=TaskTally(running=2, pending=3),
        planned=5,
    )
    summary = _summary("host-1", runs=RunTally(running=1), listed=[run], events=7)
    assert decode_summary(msgspec.json.encode(summary)) == summary
    with pytest.raises(InvalidMessageError, match="events"):
        decode_summary(b'{"source": "h", "events": -1}')
    with pytest.raises(InvalidMessageError, match="source"):
        decode_summary(b'{"events": 1}')
    with pytest.raises(InvalidMessageError, match="listed"):
        decode_summary(msgspec.json.encode({"source": "h", "listed": [run] * 201}))


def test_the_model_keeps_each_engines_latest_summary_and_adds_them_up() -> None:
    model = ReaderModel()
    now = datetime.now(timezone.utc)
    model.apply(received("cascade/status/a", StatusMessage(status="online", source="a")))
    model.apply(received("cascade/status/b", StatusMessage(status="online", source="b")))
    model.apply(received("cascade/status/c", StatusMessage(status="offline", source="c")))
    model.apply(
        _on_topic(_summary("a", runs=RunTally(running=2), tasks=TaskTally(running=4), dropped=1))
    )
    newer = _summary("b", ts=now, runs=RunTally(running=1, succeeded=3), events_per_s=10.0)
    model.apply(_on_topic(newer))
    older = _summary("b", ts=now - timedelta(seconds=5), runs=RunTally(running=9))
    model.apply(_on_topic(older))  # a late copy of an older summary changes nothing
    model.apply(_on_topic(_summary("c", runs=RunTally(running=5))))
    model.apply(received("cascade/status/d", StatusMessage(status="online", source="d")))

    assert model.engines["b"].summary == newer
    totals = model.fleet()
    assert (totals.engines, totals.online, totals.without_summary) == (4, 3, 1)
    assert totals.live_runs == 3
    assert totals.runs.succeeded == 3
    assert totals.tasks.running == 4
    assert (totals.events_per_s, totals.dropped) == (10.0, 1)
    assert totals.stranded == 5  # c went offline with five runs live


def test_a_summary_that_is_not_its_topics_source_or_from_the_future_is_refused() -> None:
    model = ReaderModel()
    model.apply(_on_topic(_summary("mallory", runs=RunTally(running=99)), level="victim"))
    ahead = datetime.now(timezone.utc) + timedelta(hours=1)
    model.apply(_on_topic(_summary("victim", ts=ahead, runs=RunTally(running=99))))
    assert model.engines == {}
    assert model.refusals.describe("victim") == "1 not its topic's source, 1 timestamp ahead"


def test_a_summary_of_more_live_runs_than_it_accounts_for_is_refused() -> None:
    """The ghost's summary (no list, ``more_live`` 0, 10**15 live runs) is refused, as one
    leaving out more than MAX_MORE_LIVE runs; one that lists or says its runs is kept."""
    model = ReaderModel()
    model.apply(_on_topic(_summary("ghost", runs=RunTally(running=10**15), more_live=0)))
    model.apply(_on_topic(_summary("huge", runs=RunTally(running=MAX_MORE_LIVE + 1))))
    assert model.engines == {}
    assert model.refusals.describe("ghost") == "1 numbers that disagree"
    assert model.refusals.describe("huge") == "1 numbers that disagree"
    model.apply(_on_topic(_summary("honest", runs=RunTally(running=MAX_MORE_LIVE))))
    assert model.engines["honest"].summary is not None


def test_a_summary_from_a_source_without_a_status_is_unconfirmed_and_counts_for_nothing() -> None:
    """A publisher cannot make a fleet of summaries alone: the ghost is neither online nor
    counted until its source announces itself."""
    model = ReaderModel()
    model.apply(_on_topic(_summary("ghost", runs=RunTally(running=5000, failed=999))))
    totals = model.fleet()
    assert (totals.engines, totals.online, totals.unconfirmed, totals.live_runs) == (1, 0, 1, 0)
    assert totals.runs.failed == 0
    model.apply(received(status_topic("ghost"), StatusMessage(status="online", source="ghost")))
    totals = model.fleet()
    assert (totals.online, totals.unconfirmed, totals.live_runs) == (1, 0, 5000)


def test_a_summary_stamped_ahead_is_replaced_by_the_engines_next_one() -> None:
    """A forged summary stamped 290 s ahead (within the skew) is ordered by when it arrived:
    the engine's next summary, stamped later than that, replaces it at once."""
    clock = [1_800_000_000.0]
    model = ReaderModel(clock=lambda: clock[0])
    model.apply(received(status_topic("e"), StatusMessage(status="online", source="e")))
    at = datetime.fromtimestamp(clock[0], timezone.utc)
    forged = _summary("e", ts=at + timedelta(seconds=290), runs=RunTally(failed=999))
    model.apply(_on_topic(forged))
    assert model.engines["e"].summary == forged
    assert model.engines["e"].last_seen == clock[0]  # not 290 s ahead either
    clock[0] += 5
    real = _summary("e", ts=at + timedelta(seconds=5), runs=RunTally(succeeded=3))
    model.apply(_on_topic(real))
    assert model.engines["e"].summary == real
    model.apply(_on_topic(_summary("e", ts=at + timedelta(seconds=1))))  # a late older copy
    assert model.engines["e"].summary == real


def test_a_cleared_or_oversized_summary() -> None:
    model = ReaderModel()
    model.apply(_on_topic(_summary("a", runs=RunTally(running=1))))
    model.apply(received(summary_topic("a"), None, retain=True))  # `cascade forget`
    assert model.engines["a"].summary is None
    padded = msgspec.json.encode(_summary("a")) + b" " * MAX_SUMMARY_PAYLOAD_BYTES
    model.apply(received(summary_topic("a"), padded))
    assert model.oversized == 1
    model.apply(received(summary_topic("a"), {"source": "a", "runs": "many"}))
    assert model.rejected == 1


def test_forgetting_the_runs_leaves_no_hole_and_a_run_read_again_is_joined_late() -> None:
    """A view that stops reading telemetry (a fleet read from summaries) forgets its runs: the
    events it did not read are not missed, and the run heard of again is asked about."""
    asked: list[tuple[str, int]] = []
    state = ReaderModel(ask=lambda run_id, after: asked.append((run_id, after)))
    bodies: list[LifecycleEvent | TaskStateEvent] = [
        LifecycleEvent(event="ENGINE_STARTED"),
        _running("a"),
    ]
    for seq, body in enumerate(bodies, 1):
        state.apply(telemetry(body, seq=seq))
    state.apply(received(status_topic("host-1"), StatusMessage(status="online", session=1)))
    assert state.forget_runs() == 1
    assert (state.runs, state.forgotten_runs, "host-1" in state.engines) == ({}, 0, True)
    state.apply(telemetry(_running("b"), seq=2_000_000))  # far beyond a jump from seq 2
    run = state.runs["run-1"]
    assert (run.joined_late, state.gaps.missed, run.refused) == (True, 0, 0)
    assert asked == [("run-1", 0)]


def _live(run_id: str, org: str, project: str) -> SummaryRun:
    started = datetime.now(timezone.utc).isoformat()
    return SummaryRun(run_id=run_id, org_id=org, project_id=project, status="Running",
                      started=started, tasks=TaskTally(running=1))  # fmt: skip


def _placed(summary: EngineSummary, org: str, project: str) -> Message:
    return received(f"cascade/summary/{org}/{project}/{summary.source}", summary, retain=True)


def test_placed_topics_name_org_project_and_source_levels() -> None:
    assert placed_summary_filter("acme") == "acme/summary/+/+/+"
    summary = _summary("e", runs=RunTally(running=2),
                       listed=[_live("r1", "a.b", "etl"), _live("r2", "acme", "etl")])  # fmt: skip
    assert misplaced_runs(summary, "cascade/summary/a%2Eb/etl/e") == 1


def test_runs_are_listed_from_the_summaries_of_their_own_org_and_project_only() -> None:
    """An engine's own summary names no org: the runs it lists there are not shown, those its
    summary per org and project lists are; one listing a run of another is refused, counted."""
    model = ReaderModel()
    model.apply(received(status_topic("e"), StatusMessage(status="online", source="e")))
    theirs, forged = _live("r1", "globex", "web"), _live("r2", "acme", "etl")
    own = _summary("e", runs=RunTally(running=2), listed=[theirs, forged])
    model.apply(_on_topic(own))
    engine = model.engines["e"]
    assert engine.summary is not None
    assert engine.summary.listed == []  # vouched for by nothing yet
    assert engine.summary.more_live == 2  # its live runs are still counted
    model.apply(_placed(_summary("e", runs=RunTally(running=1), listed=[forged]), "globex", "web"))
    assert model.refusals.describe("e") == "1 not its topic's org or project"
    model.apply(_placed(_summary("e", runs=RunTally(running=1), listed=[theirs]), "globex", "web"))
    assert [run.run_id for run in engine.summary.listed] == ["r1"]
    assert engine.summary.runs.running == 2
    assert engine.summary.more_live == 1
    assert model.fleet().runs.running == 2
    model.apply(received("cascade/summary/globex/web/e", b"", retain=True))
    assert engine.summary.listed == []  # cleared


def test_a_reader_of_some_orgs_adds_their_summaries_up() -> None:
    """Without the engine's own summary (a viewer of one org reads its org's only), the
    summaries per org and project it reads are added up."""
    model = ReaderModel()
    model.apply(received(status_topic("e"), StatusMessage(status="online", source="e")))
    for project in ("etl", "web"):
        listed = [_live(f"r-{project}", "acme", project)]
        placed = _summary("e", runs=RunTally(running=1), tasks=TaskTally(running=1),
                          listed=listed)  # fmt: skip
        model.apply(_placed(placed, "acme", project))
    summary = model.engines["e"].summary
    assert summary is not None
    assert {run.run_id for run in summary.listed} == {"r-etl", "r-web"}
    assert summary.runs.running == 2
    assert summary.tasks.running == 2
    assert model.fleet().runs.running == 2


def test_an_engine_keeps_the_summaries_of_a_bounded_number_of_places() -> None:
    """An engine lists 20 runs: a login that publishes summaries for more projects than a
    reader keeps (one each) has the ones over it refused, counted."""
    model = ReaderModel()
    for n in range(MAX_PLACES + 3):
        listed = [_live(f"r{n}", "acme", f"p{n}")]
        model.apply(
            _placed(_summary("e", runs=RunTally(running=1), listed=listed), "acme", f"p{n}")
        )
    assert len(model.engines["e"].placed) == MAX_PLACES
    assert model.refusals.describe("e") == "3 numbers that disagree"


def test_a_summary_topic_of_another_depth_is_rejected() -> None:
    model = ReaderModel()
    model.apply(received("cascade/summary/acme/e", _summary("e"), retain=True))
    assert model.rejected == 1
    assert model.engines == {}


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).timestamp()

    def __call__(self) -> float:
        return self.now


def _ended(run_id: str, status: Literal["Succeeded", "Failed"] = "Succeeded") -> SummaryRun:
    return SummaryRun(
        run_id=run_id,
        org_id="local",
        project_id="default",
        status=status,
        started="2026-11-24T10:00:00+00:00",
        tasks=TaskTally(completed=1),
    )


def test_runs_whose_end_was_missed_end_as_their_engines_summary_lists_them_and_stay_bounded() -> (
    None
):
    """A reader that missed runs' ends (shed under load) ends them once they are silent and the
    engine's summary lists them ended: the finished runs' bound holds them, not ten minutes."""
    clock = _Clock()
    state = ReaderModel(clock=clock, keep_runs=5)
    state.apply(received(status_topic("host-1"), StatusMessage(status="online", session=1)))
    for n in range(50):
        run_id = f"run-{n}"
        state.apply(telemetry(LifecycleEvent(event="ENGINE_STARTED"), run_id=run_id, seq=1))
        state.apply(telemetry(_running("a"), run_id=run_id, seq=2))  # its end never arrives
        clock.now += 1
        listed = [_ended(f"run-{m}", "Failed" if m % 2 else "Succeeded") for m in range(n + 1)]
        said = _summary("host-1", runs=RunTally(running=1), listed=listed[-20:])
        state.apply(_placed(said, "local", "default"))
    # each ended once silent for 15 s (its engine's heartbeats would say it lives), the five
    # last finished kept, and those not yet silent for long enough still live
    assert state.ends_from_summaries == 36  # run-0 to run-35: silent for 15 s at the last
    assert sorted(state.runs) == sorted(f"run-{n}" for n in range(31, 50))
    assert [state.runs[f"run-{n}"].status for n in (33, 34)] == ["Failed", "Succeeded"]
    assert all(state.runs[f"run-{n}"].status == "Running" for n in range(36, 50))


def test_missed_ends_of_runs_an_engine_runs_faster_than_its_summary_lists_still_end() -> None:
    """An engine running eight runs a second lists each ended run in its summaries for 2.5
    seconds (the last 20): a reader that missed their ends still ends each once it has been
    silent for 15 s (at a later summary, or when pruned), not ten minutes later."""
    clock = _Clock()
    state = ReaderModel(clock=clock, keep_runs=5)
    state.apply(received(status_topic("host-1"), StatusMessage(status="online", session=1)))
    listed: list[SummaryRun] = []
    for n in range(200):  # 25 s of runs
        run_id = f"run-{n}"
        state.apply(telemetry(LifecycleEvent(event="ENGINE_STARTED"), run_id=run_id, seq=1))
        state.apply(telemetry(_running("a"), run_id=run_id, seq=2))  # its end never arrives
        clock.now += 0.125
        listed = [*listed, _ended(run_id, "Failed" if n % 2 else "Succeeded")][-20:]
        if n % 8 == 7:  # a summary a second
            said = _summary("host-1", runs=RunTally(running=1), listed=listed)
            state.apply(_placed(said, "local", "default"))
    # at the last summary (t = 25 s), the runs silent for 15 s (heard until t = 10 s) have ended
    assert state.ends_from_summaries == 81
    assert [state.runs[f"run-{n}"].status for n in (79, 80)] == ["Failed", "Succeeded"]
    assert not state.runs["run-81"].finished
    clock.now += 15
    state.prune()  # the engine has gone quiet: no more summaries, and the rest end too
    assert state.ends_from_summaries == 200
    assert sorted(state.runs) == sorted(f"run-{n}" for n in range(195, 200))


def test_a_run_that_still_talks_or_is_listed_live_keeps_waiting_for_its_own_end() -> None:
    """A summary's word on a run heard from lately, or listed live, ends nothing."""
    clock = _Clock()
    state = ReaderModel(clock=clock)
    state.apply(received(status_topic("host-1"), StatusMessage(status="online", session=1)))
    state.apply(telemetry(LifecycleEvent(event="ENGINE_STARTED"), seq=1))
    clock.now += 14
    state.apply(_placed(_summary("host-1", listed=[_ended("run-1")]), "local", "default"))
    live = _summary("host-1", runs=RunTally(running=1), listed=[_live("run-1", "local", "default")])
    clock.now += 30
    state.apply(_placed(live, "local", "default"))
    state.prune()
    assert (state.runs["run-1"].finished, state.ends_from_summaries) == (False, 0)
