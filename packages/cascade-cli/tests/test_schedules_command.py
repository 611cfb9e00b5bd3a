"""`cascade schedules`: each served schedule once, from its servers' announcements."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import encode_payload
from cascade.interfaces.serving import ServedAnnouncement, ServedSchedule, served_topic
from cascade.runtime import Engine, Schedule, task

Invoke = Callable[..., Result]
Publish = Callable[[str, bytes], None]
NEXT = "2026-11-26T01:00:00+00:00"


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column shown."""
    monkeypatch.setenv("COLUMNS", "200")


def _announce(publish: Publish, source: str, *schedules: ServedSchedule) -> None:
    said = ServedAnnouncement(
        source=source, org_id="local", project_id="default", workflows=[], capacity=1,
        schedules=list(schedules),
    )  # fmt: skip
    publish(served_topic("local", "default", source), encode_payload(said))


def _nightly(**fields: object) -> ServedSchedule:
    return ServedSchedule(
        name="nightly", workflow="etl", cron="0 2 * * *", tz="Europe/Berlin", next=NEXT,
        upcoming=["2026-11-27T01:00:00+00:00"], **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_schedule_served_twice_is_listed_once_with_the_last_slot_fired_and_its_run(
    invoke: Invoke, publish_retained: Publish
) -> None:
    """Two servers of `nightly`: one row, the last slot the one that fired it says (its run),
    both servers listed; the table says when it fires and its next slot."""
    _announce(
        publish_retained, "etl-1",
        _nightly(last="2026-11-25T01:00:00+00:00", last_slot="2026-11-24T01:00:00+00:00",
                 last_run="a" * 32),
    )  # fmt: skip
    _announce(
        publish_retained, "etl-2",
        _nightly(last="2026-11-25T01:00:00+00:00", last_slot="2026-11-25T01:00:00+00:00",
                 last_run="b" * 32, skipped=1, last_skipped="2026-11-23T01:00:00+00:00: x"),
    )  # fmt: skip
    result = invoke("schedules", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("nightly") == 1
    assert "0 2 * * * Europe/Berlin" in result.stdout
    assert "2026-11-26 01:00:00Z" in result.stdout
    assert "2026-11-25 01:00:00Z bbbbbbbbbbbb" in result.stdout
    assert "active" in result.stdout
    listed = json.loads(invoke("schedules", "--json", "--timeout", "1").stdout)["schedules"]
    assert [s["name"] for s in listed] == ["nightly"]
    (nightly,) = listed
    assert (nightly["last_slot"], nightly["last_run"], nightly["last_source"]) == (
        "2026-11-25T01:00:00+00:00", "b" * 32, "etl-2",
    )  # fmt: skip
    assert nightly["next"] == NEXT
    assert nightly["upcoming"] == ["2026-11-27T01:00:00+00:00"]
    assert sorted(nightly["servers"]) == ["etl-1", "etl-2"]
    assert (nightly["paused"], nightly["skipped"]) == (False, 1)


def test_a_paused_schedule_says_who_paused_it_until_when_and_why(
    invoke: Invoke, publish_retained: Publish
) -> None:
    _announce(
        publish_retained, "etl-1",
        _nightly(paused=True, paused_by="alice", paused_reason="db migration",
                 paused_until=1795000000.0),
    )  # fmt: skip
    result = invoke("schedules", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert "paused by alice until 2026-11-18 11:06:40Z: db migration" in " ".join(
        result.stdout.split()
    )
    (nightly,) = json.loads(invoke("schedules", "--json", "--timeout", "1").stdout)["schedules"]
    assert (nightly["paused"], nightly["paused_by"], nightly["paused_until"]) == (
        True, "alice", 1795000000.0,
    )  # fmt: skip


def test_no_schedule_served_is_said(invoke: Invoke, publish_retained: Publish) -> None:
    _announce(publish_retained, "etl-1")
    result = invoke("schedules", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no schedule is served (no announcement names one)\n"


class WithServer(InMemoryConnector):
    """The command's connector, on a broker where an engine serves `nightly` (hourly) in the
    command's own event loop while it runs."""

    def __init__(self, broker: InMemoryBroker) -> None:
        super().__init__(broker, presence=False)
        self.serving: asyncio.Task[None] | None = None

    async def connect(self, *, require: bool = False) -> None:
        engine = Engine(InMemoryConnector(self.broker, source_id="etl-1"), heartbeat_interval=None)
        announced = asyncio.Event()
        await super().connect(require=require)
        await self.subscribe(served_topic("local", "default", "etl-1"), lambda m: announced.set())
        hourly = Schedule(every=timedelta(hours=1), workflow="etl")
        self.serving = asyncio.create_task(
            engine.serve({"etl": etl}, schedules={"nightly": hourly})
        )
        await asyncio.wait_for(announced.wait(), 5)

    async def disconnect(self) -> None:
        if self.serving is not None:
            self.serving.cancel()
            await asyncio.gather(self.serving, return_exceptions=True)
        await super().disconnect()


@task
def etl() -> int:
    return 1


def test_backfill_starts_each_slot_once_even_if_asked_twice(
    invoke: Invoke, broker: InMemoryBroker
) -> None:
    """`cascade backfill` of three past hours: each started; asked again (a new server
    process, the claims retained on the broker): each "claimed already", exit 0; --dry-run
    lists the slots and their request ids; more than 100 slots: exit 2."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    span = ["--from", (now - timedelta(hours=3)).isoformat(), "--to",
            (now - timedelta(hours=1)).isoformat(), "--timeout", "3"]  # fmt: skip

    def factory(options: object) -> InMemoryConnector:
        return WithServer(broker)

    planned = invoke("backfill", "nightly", *span, "--dry-run", connector_factory=factory)
    assert planned.exit_code == 0, planned.output
    stamp = f"{now - timedelta(hours=3):%Y%m%dT%H%M%SZ}"
    assert f"sched-nightly-{stamp}" in planned.stdout
    assert "3 slots would start" in planned.stdout
    done = invoke("backfill", "nightly", *span, "--json", connector_factory=factory)
    assert done.exit_code == 0, done.output
    slots = json.loads(done.stdout)["slots"]
    assert [s["outcome"] for s in slots] == ["started"] * 3
    again = invoke("backfill", "nightly", *span, "--json", connector_factory=factory)
    assert again.exit_code == 0, again.output
    assert all("claimed already by etl-1" in s["error"] for s in json.loads(again.stdout)["slots"])
    wide = ["--from", (now - timedelta(days=30)).isoformat(), "--to", now.isoformat()]
    too_many = invoke("backfill", "nightly", *wide, connector_factory=factory)
    assert too_many.exit_code == 2
    assert "more than 100 slots" in too_many.output
