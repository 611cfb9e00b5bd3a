"""Schedules of served workflows: their slots, each fired once by the servers that share it,
overlap and catchup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.interfaces.serving import (
    ServedAnnouncement,
    ServedSchedule,
    decode_served,
    served_topic,
)
from cascade.runtime import Engine, Schedule, task
from cascade.runtime.testing import eventually, serving

UTC = timezone.utc


@task(name="load")
def load(day: str = "any") -> str:
    return day


def _engine(broker: InMemoryBroker, source: str) -> Engine:
    return Engine(InMemoryConnector(broker, source_id=source), heartbeat_interval=None)


def test_a_cron_schedule_fires_in_its_time_zone_and_the_skipped_hour_at_the_next() -> None:
    """0 2 * * * in Berlin: 01:00 UTC in winter, and on the night 02:00 does not exist, 03:00."""
    schedule = Schedule(cron="0 2 * * *", tz="Europe/Berlin")
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    slots = list(schedule.slots(start, start + timedelta(days=3)))
    assert slots == [
        datetime(2026, 3, 28, 1, tzinfo=UTC),  # 02:00 CET
        datetime(2026, 3, 29, 1, tzinfo=UTC),  # 03:00 CEST: 02:00 was skipped
        datetime(2026, 3, 30, 0, tzinfo=UTC),  # 02:00 CEST
    ]
    assert schedule.is_slot(slots[0])
    assert not schedule.is_slot(slots[0] + timedelta(minutes=1))


def test_every_is_aligned_on_the_epoch_so_every_server_computes_the_same_slots() -> None:
    """every=90 s: slots are multiples of 90 s since 1970, whatever the moment asked."""
    schedule = Schedule(every=timedelta(seconds=90))
    moment = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert schedule.next_after(moment).timestamp() % 90 == 0
    assert schedule.next_after(moment + timedelta(seconds=1)) == schedule.next_after(moment)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "cron or every"),
        ({"cron": "0 2 * *", "every": timedelta(seconds=1)}, "cron or every"),
        ({"cron": "61 2 * * *"}, "not a cron expression"),
        ({"every": timedelta(milliseconds=1500)}, "a whole number of seconds"),
        ({"cron": "0 2 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": timedelta(seconds=5), "overlap": "wait"}, "overlap is one of"),
        ({"every": timedelta(seconds=5), "catchup": "some"}, "catchup is one of"),
        ({"every": timedelta(seconds=5), "jitter": timedelta(hours=2)}, "jitter"),
    ],
)
def test_a_bad_schedule_is_refused_saying_why(options: dict[str, Any], says: str) -> None:
    """Every bad value raises ValueError naming it, before anything serves."""
    with pytest.raises(ValueError, match=says):
        Schedule(**options)


def test_jitter_is_the_same_on_every_server_and_within_its_bound() -> None:
    """The delay is drawn from the schedule's name and slot: the same everywhere."""
    schedule = Schedule(every=timedelta(seconds=10), jitter=timedelta(seconds=3))
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    delays = {schedule.delay("n", slot + timedelta(seconds=10 * i)) for i in range(50)}
    assert all(0 <= d <= 3 for d in delays)
    assert len(delays) > 10
    assert schedule.delay("n", slot) == Schedule(**vars(schedule)).delay("n", slot)


async def test_a_schedule_of_a_workflow_not_served_is_refused(broker: InMemoryBroker) -> None:
    engine = _engine(broker, "s1")
    with pytest.raises(ValueError, match="not served"):
        await engine.serve({"nightly": load}, schedules={"n": Schedule(every=timedelta(seconds=1))})


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


async def test_three_servers_start_one_run_a_slot_each_naming_its_slot(
    broker: InMemoryBroker,
) -> None:
    """Three servers of one schedule every second: each slot's run starts once, on one of
    them, its origin naming the schedule and the slot."""
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    engines = [_engine(broker, f"s{i}") for i in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        runs = [
            await stack.enter_async_context(
                serving(e, workflows={"load": load}, schedules=schedules)
            )
            for e in engines
        ]
        await eventually(lambda: sum(map(len, runs)) >= 4, timeout=8)
    started = [r for rs in runs for r in rs]
    slots = [r.origin.scheduled_for for r in started if r.origin is not None]
    assert len(slots) == len(started) == len(set(slots)), slots
    for run in started:
        assert run.origin is not None
        assert run.origin.schedule == "tick"
        assert run.origin.workflow == "load"
        assert run.origin.request_id is not None
        assert run.origin.request_id.startswith("sched-tick-")
        assert datetime.fromisoformat(run.origin.scheduled_for or "").timestamp() % 1 == 0
    assert sum(e.stats.slots_fired for e in engines) == len(started)
    assert sum(e.stats.slots_claimed for e in engines) == len(started)


async def test_overlap_skip_skips_a_slot_while_its_run_lives_and_says_so(
    broker: InMemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The first slot's run holds; the slots that come while it lives are skipped: a
    warning, a count, the announcement's last_skipped."""
    release = asyncio.Event()

    @task(name="slow")
    async def slow() -> None:
        await release.wait()

    engine = _engine(broker, "s1")
    schedules = {"slow": Schedule(every=timedelta(seconds=1), overlap="skip")}
    seen: list[ServedAnnouncement] = []
    async with InMemoryConnector(broker, source_id="reader", presence=False) as reader:
        await reader.subscribe(
            served_topic(engine.org_id, engine.project_id, "s1"),
            lambda m: seen.append(decode_served(m.raw)) if m.raw else None,
        )
        with caplog.at_level(logging.WARNING, "cascade.runtime.serve"):
            async with serving(engine, workflows={"slow": slow()}, schedules=schedules) as runs:
                await eventually(lambda: any(s.skipped for a in seen for s in a.schedules))
                assert len(runs) == 1
                assert engine.stats.slots_skipped >= 1
                release.set()
    assert "skipped: its run" in caplog.text
    assert "still lives (overlap skip)" in caplog.text
    said = [s for a in seen for s in a.schedules if s.skipped]
    assert "overlap skip" in said[-1].last_skipped


async def test_a_slot_claimed_by_another_is_not_fired_and_catchup_latest_fires_the_last_missed(
    broker: InMemoryBroker,
) -> None:
    """A server coming back after an outage: the last claim is 5 slots old, so the latest
    missed slot alone fires (catchup latest); the 3 before it are counted missed."""
    period = timedelta(seconds=10)
    if time.time() % 10 > 8:  # not across a slot's boundary while the test starts
        await asyncio.sleep(2.5)
    now = datetime.now(UTC)
    schedule = Schedule(every=period, catchup="latest", workflow="load")
    last = schedule.next_after(now - 6 * period)
    engine = _engine(broker, "s1")
    async with InMemoryConnector(broker, source_id="old", presence=False) as old:
        # a slot's claim topic (docs/schedules.md): the slot in UTC to the second
        stamp = last.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        topic = f"cascade/schedule/{engine.org_id}/{engine.project_id}/c/{stamp}"
        await old.publish(topic, {"source": "old", "nonce": "ab" * 8, "at": 1.0}, retain=True)
    async with serving(engine, workflows={"load": load}, schedules={"c": schedule}) as runs:
        await eventually(lambda: len(runs) == 1, timeout=5)
    origin = runs[0].origin
    assert origin is not None
    missed = list(schedule.slots(last, now))
    assert origin.scheduled_for == missed[-1].isoformat()
    assert engine.stats.slots_missed == len(missed) - 1


async def test_two_servers_that_both_win_a_slot_start_it_once_through_a_shared_results_store(
    tmp_path: Path,
) -> None:
    """Two servers whose brokers disagree on the first claim (here: two brokers, so each
    hears its own claim first and wins every slot) but share a results store: its exclusive
    create takes each slot's request id once, so each slot runs once, and the loser counts
    it deduplicated, not skipped."""
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    engines = [
        Engine(
            InMemoryConnector(InMemoryBroker(), source_id=f"s{i}"),
            heartbeat_interval=None,
            results=tmp_path / "results",
        )
        for i in range(2)
    ]
    async with contextlib.AsyncExitStack() as stack:
        runs = [
            await stack.enter_async_context(
                serving(e, workflows={"load": load}, schedules=schedules)
            )
            for e in engines
        ]
        await eventually(lambda: sum(e.stats.slots_deduplicated for e in engines) >= 2, timeout=8)
    slots = [r.origin.scheduled_for for rs in runs for r in rs if r.origin is not None]
    assert len(slots) == len(set(slots)), slots
    # a slot won is counted claimed before its run starts (the store's claim, the run's start):
    # a server stopped in between (the test's end, under load) leaves one claimed, not started
    settled = len(slots) + sum(e.stats.slots_deduplicated for e in engines)
    in_flight = sum(e.stats.slots_claimed for e in engines) - settled
    assert 0 <= in_flight <= len(engines), (in_flight, settled)
    assert sum(e.stats.slots_skipped for e in engines) == 0


async def _each_hearing_the_others_claim_first(slot: datetime) -> list[InMemoryBroker]:
    """Two brokers, each holding the other server's claim (``s1``'s on the first, ``s0``'s on
    the second) of ``tick``'s ``slot`` in acme/etl, its topic as docs/schedules.md writes it."""
    brokers = [InMemoryBroker(), InMemoryBroker()]
    for broker, other in zip(brokers, ("s1", "s0"), strict=True):
        claimant = InMemoryConnector(broker, source_id=other)
        await claimant.connect()
        claim = {"source": other, "nonce": uuid.uuid4().hex, "at": time.time()}
        topic = f"cascade/schedule/acme/etl/tick/{slot.strftime('%Y%m%dT%H%M%SZ')}"
        await claimant.publish(topic, claim, qos=1, retain=True)
        await claimant.disconnect()
    return brokers


def _sharing_a_store(brokers: list[InMemoryBroker], store: Path) -> list[Engine]:
    return [
        Engine(
            InMemoryConnector(broker, source_id=f"s{i}"),
            heartbeat_interval=None,
            results=store,
            org_id="acme",
            project_id="etl",
        )
        for i, broker in enumerate(brokers)
    ]


async def test_two_servers_each_hearing_the_others_claim_first_run_the_slot_once_by_a_shared_store(
    tmp_path: Path,
) -> None:
    """On a broker that does not order two servers' claims alike (RabbitMQ, a NATS cluster),
    each may hear the other's claim of a slot first, and neither wins it there (seen on
    RabbitMQ: a slot lost). Where they share a results store, the store gives it to one of
    them. Here two brokers, each holding the other server's claim of one slot: it runs once."""
    every = timedelta(seconds=1)
    schedules = {"tick": Schedule(every=every, workflow="load")}
    slot = Schedule(every=every).next_after(datetime.now(UTC) + timedelta(seconds=1))
    engines = _sharing_a_store(await _each_hearing_the_others_claim_first(slot), tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        runs = [
            await stack.enter_async_context(
                serving(e, workflows={"load": load}, schedules=schedules)
            )
            for e in engines
        ]

        def slots() -> list[str | None]:
            return [r.origin.scheduled_for for rs in runs for r in rs if r.origin is not None]

        await eventually(lambda: any(s and s > slot.isoformat() for s in slots()), timeout=8)
    assert slots().count(slot.isoformat()) == 1, slots()
    assert len(slots()) == len(set(slots())), slots()


async def test_a_full_server_that_leaves_a_slot_to_the_store_says_nothing_of_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server whose claim of a slot went to another, and that has no room for a run, leaves
    the slot to the store in silence: the other server, which the store gives it, runs it, and
    nobody says it was skipped."""
    release = asyncio.Event()

    @task(name="slow")
    async def slow() -> None:
        await release.wait()

    every = timedelta(seconds=1)
    schedules = {"tick": Schedule(every=every, workflow="load")}
    slot = Schedule(every=every).next_after(datetime.now(UTC) + timedelta(seconds=2))
    brokers = await _each_hearing_the_others_claim_first(slot)
    engines = _sharing_a_store(brokers, tmp_path)
    workflows = {"load": load, "slow": slow()}
    with caplog.at_level(logging.INFO, "cascade.runtime.serve"):
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(
                serving(engines[0], workflows=workflows, schedules=schedules)
            )
            full = {"max_runs": 1, "max_queued": 0}
            await stack.enter_async_context(
                serving(engines[1], workflows=workflows, schedules=schedules, **full)
            )
            async with InMemoryConnector(brokers[1], presence=False) as ops:
                announced = asyncio.Event()
                topic = served_topic("acme", "etl", "s1")
                await ops.subscribe(topic, lambda m: announced.set() if m.raw else None)
                await asyncio.wait_for(announced.wait(), 5)
                control = Controller(ops, timeout=5)
                busy = await control.start("slow", on="s1", org="acme", project="etl")
            assert busy.run_id is not None, busy
            await eventually(
                lambda: any(r.origin and r.origin.scheduled_for == slot.isoformat() for r in first),
                timeout=8,
            )
            release.set()
    said = [r.getMessage() for r in caplog.records if slot.isoformat() in r.getMessage()]
    assert not [line for line in said if "skipped" in line], said


async def test_servers_each_with_a_results_store_of_its_own_leave_each_slot_to_its_claim(
    broker: InMemoryBroker,
    tmp_path: Path,
) -> None:
    """Three servers on a broker that orders their claims alike, each keeping its results in
    a store of its own: the server whose claim came first fires the slot; the others, which
    do not share its store, leave it to that claim (no store decides between them)."""
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    engines = [
        Engine(
            InMemoryConnector(broker, source_id=f"s{i}"),
            heartbeat_interval=None,
            results=tmp_path / f"results-{i}",
        )
        for i in range(3)
    ]
    async with contextlib.AsyncExitStack() as stack:
        runs = [
            await stack.enter_async_context(
                serving(e, workflows={"load": load}, schedules=schedules)
            )
            for e in engines
        ]
        await eventually(lambda: sum(map(len, runs)) >= 4, timeout=8)
    slots = [r.origin.scheduled_for for rs in runs for r in rs if r.origin is not None]
    assert len(slots) == len(set(slots)), slots
    assert sum(e.stats.slots_doubled for e in engines) == 0


async def test_two_servers_that_both_win_a_slot_skip_it_once_through_a_shared_results_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two servers that both win every slot (two brokers) of a schedule whose run outlives
    its slots (overlap skip), sharing a results store: a slot is run or skipped, once between
    them, as its claim in the store says; the server that lost it counts it deduplicated."""
    release = asyncio.Event()

    @task(name="slow")
    async def slow() -> None:
        await release.wait()

    schedules = {"slow": Schedule(every=timedelta(seconds=1), overlap="skip")}
    engines = [
        Engine(
            InMemoryConnector(InMemoryBroker(), source_id=f"s{i}"),
            heartbeat_interval=None,
            results=tmp_path / "results",
        )
        for i in range(2)
    ]
    with caplog.at_level(logging.INFO, "cascade.runtime.serve"):
        async with contextlib.AsyncExitStack() as stack:
            runs = [
                await stack.enter_async_context(
                    serving(e, workflows={"slow": slow()}, schedules=schedules)
                )
                for e in engines
            ]
            await eventually(lambda: sum(e.stats.slots_skipped for e in engines) >= 3, timeout=8)
            release.set()
    ran = [r.origin.scheduled_for for rs in runs for r in rs if r.origin is not None]
    skipped = [
        r.getMessage().split(" slot ")[1].split(" skipped")[0]
        for r in caplog.records
        if " skipped: " in r.getMessage()
    ]
    assert len(skipped) == len(set(skipped)), skipped
    assert len(ran) == len(set(ran)), ran
    assert not set(ran) & set(skipped)
    assert sum(e.stats.slots_deduplicated for e in engines) >= len(skipped)


async def test_a_slot_a_peer_announces_it_fired_too_is_counted_doubled_and_said(
    broker: InMemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a shared results store, a slot two servers won runs twice: the one that hears
    the other's announcement name the slot it fired counts it (slots_doubled) and warns."""
    engine = _engine(broker, "s1")
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    with caplog.at_level(logging.WARNING, "cascade.runtime.serve"):
        async with serving(engine, workflows={"load": load}, schedules=schedules) as runs:
            await eventually(lambda: len(runs) >= 1, timeout=5)
            origin = runs[0].origin
            assert origin is not None
            assert origin.scheduled_for is not None
            peer = ServedAnnouncement(
                source="s2",
                org_id=engine.org_id,
                project_id=engine.project_id,
                workflows=[],
                capacity=1,
                schedules=[
                    ServedSchedule(
                        name="tick",
                        workflow="load",
                        last_slot=origin.scheduled_for,
                        last_run="f" * 32,
                    )
                ],
            )
            async with InMemoryConnector(broker, source_id="s2", presence=False) as other:
                topic = served_topic(engine.org_id, engine.project_id, "s2")
                await other.publish(topic, peer, retain=True)
                await eventually(lambda: engine.stats.slots_doubled == 1)
    assert f"slot {origin.scheduled_for} ran twice" in caplog.text


async def test_a_paused_schedule_skips_its_slots_counted_paused_and_fires_again_once_resumed(
    broker: InMemoryBroker,
) -> None:
    """`cascade pause schedule:tick` as the Controller sends it: the server skips tick's
    slots, counts them paused (not skipped, not missed), and its announcement says who paused
    it, why and until when; resumed, the next slot fires."""
    engine = _engine(broker, "s1")
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    seen: list[ServedAnnouncement] = []
    async with InMemoryConnector(broker, source_id="ops", presence=False) as ops:
        await ops.subscribe(
            served_topic(engine.org_id, engine.project_id, "s1"),
            lambda m: seen.append(decode_served(m.raw)) if m.raw else None,
        )
        control = Controller(ops, issued_by="alice")
        await control.pause("schedule:tick", ttl=600, reason="db migration")
        async with serving(engine, workflows={"load": load}, schedules=schedules) as runs:
            await eventually(lambda: engine.stats.slots_paused >= 2, timeout=6)
            assert runs == []
            said = seen[-1].schedules[0]
            assert said.paused
            assert said.paused_by == "alice"
            assert said.paused_reason == "db migration"
            assert said.paused_until == pytest.approx(time.time() + 600, abs=30)
            assert "paused by alice: db migration" in said.last_skipped
            await control.resume("schedule:tick")
            await eventually(lambda: len(runs) >= 1, timeout=5)
            await eventually(lambda: not seen[-1].schedules[0].paused)
    assert engine.stats.slots_skipped == engine.stats.slots_missed == 0


async def test_the_announcement_lists_the_next_slots(broker: InMemoryBroker) -> None:
    """`upcoming`: the 4 slots after `next`, as the schedule computes them."""
    engine = _engine(broker, "s1")
    schedule = Schedule(cron="0 2 * * *", tz="Europe/Berlin", workflow="load")
    seen: list[ServedAnnouncement] = []
    async with InMemoryConnector(broker, source_id="ops", presence=False) as ops:
        await ops.subscribe(
            served_topic(engine.org_id, engine.project_id, "s1"),
            lambda m: seen.append(decode_served(m.raw)) if m.raw else None,
        )
        async with serving(engine, workflows={"load": load}, schedules={"n": schedule}):
            await eventually(lambda: bool(seen and seen[-1].schedules[0].next))
    said = seen[-1].schedules[0]
    slots = [datetime.fromisoformat(said.next)]
    for _ in range(4):
        slots.append(schedule.next_after(slots[-1]))
    assert said.upcoming == [slot.isoformat() for slot in slots[1:]]


async def test_a_backfill_starts_each_past_slot_once_even_if_asked_twice(
    broker: InMemoryBroker,
) -> None:
    """Three past slots backfilled: three runs, each naming its slot; asked again, none more
    (the same answers, or "claimed already"); a slot to come, or more than BACKFILL_MAX, is
    refused."""
    engine = _engine(broker, "s1")
    schedule = Schedule(every=timedelta(hours=1), workflow="load", params={"day": "past"})
    slots = list(schedule.slots(datetime.now(UTC) - timedelta(hours=4), datetime.now(UTC)))[:3]
    seen: list[ServedAnnouncement] = []
    async with InMemoryConnector(broker, source_id="ops", presence=False) as ops:
        await ops.subscribe(
            served_topic(engine.org_id, engine.project_id, "s1"),
            lambda m: seen.append(decode_served(m.raw)) if m.raw else None,
        )
        control = Controller(ops, issued_by="alice", timeout=3)
        async with serving(engine, workflows={"load": load}, schedules={"h": schedule}) as runs:
            await eventually(lambda: bool(seen))
            first = await control.backfill("h", slots, reason="the outage")
            assert [r.outcome for r in first] == ["started"] * 3, first
            again = await control.backfill("h", slots)
            await eventually(lambda: len(runs) == 3)
            future = await control.backfill("h", [schedule.next_after(datetime.now(UTC))])
            with pytest.raises(ValueError, match="at most 100"):
                await control.backfill("h", [slots[0]] * 101)
    assert all(
        (r.outcome == "refused" and "claimed already by s1" in (r.error or ""))
        or r.run_id == f.run_id
        for r, f in zip(again, first, strict=True)
    ), again
    assert "is to come" in (future[0].error or "")
    said = sorted((r.origin.scheduled_for, r.origin.request_id) for r in runs if r.origin)
    assert said == [(s.isoformat(), f"sched-h-{s:%Y%m%dT%H%M%SZ}") for s in slots]
    assert all(r.origin and r.origin.params == {"day": "past"} for r in runs)
    assert engine.stats.slots_backfilled == 3


async def test_serving_stopped_while_a_slot_is_being_taken_stops_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Serving cancelled (SIGTERM, a person) while a slot's start is being taken in the results
    store stops: the cancel goes on, never turned into a slot 'skipped' by an error of ours
    that left the clock running (a stopped server that never stopped)."""
    import threading

    from cascade.runtime import ResultStore

    taking = threading.Event()
    let_go = threading.Event()

    class SlowStore(ResultStore):
        def claim_start(self, request_id: str, claim: Any) -> Any:
            taking.set()
            let_go.wait(10)  # the store is slow: the claim is under way when serving stops
            return super().claim_start(request_id, claim)

    engine = Engine(
        InMemoryConnector(InMemoryBroker(), source_id="s0"),
        heartbeat_interval=None,
        results=SlowStore(tmp_path / "results"),
    )
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    served = asyncio.create_task(engine.serve({"load": load}, schedules=schedules))
    try:
        await eventually(taking.is_set, timeout=8)
        served.cancel()
        done, _ = await asyncio.wait({served}, timeout=5)
    finally:
        let_go.set()
    assert done, "serving did not stop while a slot was being taken"
    assert served.cancelled()
    assert "cannot access local variable" not in caplog.text
