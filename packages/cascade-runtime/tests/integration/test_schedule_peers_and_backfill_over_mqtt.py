"""A schedule's servers over a real mosquitto: another org's announcement of a same-named
schedule does not hold ours back, a backfill a full server refuses as busy leaves its
slots for asking again, and a backfill's dry run claims nothing (issue 80)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller
from cascade.interfaces import Message
from cascade.interfaces.commands import reply_topic
from cascade.interfaces.serving import (
    ServedAnnouncement,
    ServedWorkflow,
    StartReply,
    StartRequest,
    addressed_start_topic,
    served_topic,
)
from cascade.runtime import Engine, Schedule, task
from cascade.runtime.testing import eventually, serving
from cascade.testkit import MosquittoBroker

UTC = timezone.utc


@task(name="tick")
def tick() -> int:
    return 1


def _connector(broker: MosquittoBroker, prefix: str, source: str) -> MqttConnector:
    return MqttConnector(broker.host, broker.port, topic_prefix=prefix, source_id=source)


async def test_another_orgs_live_run_of_a_same_named_schedule_does_not_skip_ours(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """globex announces, on its own topic, a live run of its schedule `tick`; so does a
    server of acme/etl's other workflow: acme/etl's `tick` (overlap skip) fires every slot."""
    engine = Engine(
        _connector(mosquitto_broker, prefix, "acme-1"),
        heartbeat_interval=None,
        org_id="acme",
        project_id="etl",
    )
    async with _connector(mosquitto_broker, prefix, "globex-1") as globex:
        for org, project, source, workflow in [
            ("globex", "etl", "globex-1", "tick"),  # another org's schedule of that name
            ("acme", "etl", "acme-other", "other"),  # a schedule `tick` of another workflow
        ]:
            live = msgspec.convert({
                "source": source, "org_id": org, "project_id": project, "capacity": 1,
                "workflows": [ServedWorkflow(name=workflow)],
                "live": [{"run_id": f"{source}-run", "workflow": workflow, "schedule": "tick"}],
            }, ServedAnnouncement)  # fmt: skip
            topic = served_topic(org, project, source, prefix)
            await globex.publish(topic, live, qos=1, retain=True)
        every = Schedule(every=timedelta(seconds=1), overlap="skip", catchup="none")
        async with serving(engine, {"tick": tick}, schedules={"tick": every}):
            stats = engine.stats
            await eventually(lambda: stats.slots_fired + stats.slots_skipped >= 4, timeout=20)
        for source, org in [("globex-1", "globex"), ("acme-other", "acme")]:
            await globex.publish(served_topic(org, "etl", source, prefix), b"", retain=True)
    assert (stats.slots_skipped, stats.slots_fired >= 4) == (0, True), stats


async def _backfill(control: Controller, slots: list[datetime]) -> list[StartReply]:
    return await control.backfill("tick", slots, reason="the outage")


async def test_a_backfill_refused_as_busy_leaves_its_slots_to_ask_again(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """Five past slots at a server of one run and one queued: two are taken, three refused
    busy and left unclaimed; asked again (twice at once each time) once the runs ended, the
    three start, each once: five runs, one a slot."""
    release = asyncio.Event()

    @task(name="tick")
    async def waits() -> int:
        await release.wait()
        return 1

    engine = Engine(
        _connector(mosquitto_broker, prefix, "acme-1"),
        heartbeat_interval=None,
        org_id="acme",
        project_id="etl",
    )
    hourly = Schedule(every=timedelta(hours=1), workflow="tick", catchup="none")
    now = datetime.now(UTC)
    slots = list(hourly.slots(now - timedelta(hours=6), now))[-5:]
    async with _connector(mosquitto_broker, prefix, "ops") as ops:
        control = Controller(ops, issued_by="alice", timeout=10)
        schedules = {"tick": hourly}
        options: dict[str, Any] = {"schedules": schedules, "max_runs": 1, "max_queued": 1}
        async with serving(engine, {"tick": waits}, **options) as runs:
            while not await control.schedules():  # until the server announced it
                pass
            first = await _backfill(control, slots)
            release.set()
            await eventually(lambda: len(runs) == 2)
            answers: list[StartReply] = []
            for _ in range(3):  # each time, two runs at most are taken (one runs, one waits)
                while any(s.load for s in await control.served()):  # until the runs ended
                    pass
                again, twice = await asyncio.gather(
                    _backfill(control, slots), _backfill(control, slots)
                )
                answers += again + twice
                if all(r.outcome == "started" for r in again):  # asked again: as it answered
                    break
            await eventually(lambda: len(runs) == 5)
    assert [r.outcome for r in first] == ["started"] * 2 + ["refused"] * 3, first
    assert all("busy" in r.error and "ask again" in r.error for r in first[2:]), first
    started = {r.run_id for r in [*first, *answers] if r.outcome == "started"}
    assert started == {r.run_id for r in runs}, answers
    assert len(started) == 5
    said = sorted(r.origin.scheduled_for or "" for r in runs if r.origin)
    assert said == [slot.isoformat() for slot in slots]  # each slot once
    assert engine.stats.slots_backfilled == 5


async def test_a_dry_run_of_a_backfill_claims_nothing(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """A backfill's start request with ``dry_run`` (the wire lets one be sent) is answered
    with what it would start and starts nothing; the slot stays unclaimed and its backfill,
    asked after (its request id the same), starts it."""
    engine = Engine(
        _connector(mosquitto_broker, prefix, "acme-1"),
        heartbeat_interval=None,
        org_id="acme",
        project_id="etl",
    )
    hourly = Schedule(every=timedelta(hours=1), workflow="tick", catchup="none")
    now = datetime.now(UTC)
    slot = list(hourly.slots(now - timedelta(hours=3), now))[-1]
    dry = msgspec.convert(
        {
            "id": f"sched-tick-{slot.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",  # the slot's
            "workflow": "tick",
            "issued_by": "alice",
            "rerun_of": uuid.uuid4().hex,  # a dry run goes with one on the wire
            "dry_run": True,
            "backfill": {"schedule": "tick", "slot": slot.isoformat()},
        },
        StartRequest,
    )
    async with _connector(mosquitto_broker, prefix, "ops") as ops:
        control = Controller(ops, issued_by="alice", timeout=10)
        async with serving(engine, {"tick": tick}, schedules={"tick": hourly}) as runs:
            while not await control.schedules():  # until the server announced it
                pass
            # the wire's request, as a script sends it, to the server's own start topic
            answered: asyncio.Future[StartReply] = asyncio.get_running_loop().create_future()

            def answer(message: Message) -> None:
                if not answered.done():
                    answered.set_result(msgspec.json.decode(message.raw, type=StartReply))

            await ops.subscribe(reply_topic("acme", dry.id, "acme-1", prefix), answer)
            start_on = addressed_start_topic("acme", "etl", "tick", "acme-1", prefix)
            await ops.publish(start_on, msgspec.json.encode(dry), qos=1)
            planned = await asyncio.wait_for(answered, 10)
            (started,) = await _backfill(control, [slot])
            assert planned.outcome == "refused", planned
            assert "a backfill starts its schedule's run" in (planned.error or ""), planned
            assert started.outcome == "started", started
            await eventually(lambda: len(runs) == 1)
    assert [r.run_id for r in runs] == [started.run_id]
    assert runs[0].origin is not None
    assert runs[0].origin.scheduled_for == slot.isoformat()
    assert engine.stats.slots_backfilled == 1
