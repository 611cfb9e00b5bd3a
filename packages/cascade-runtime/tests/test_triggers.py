"""Triggers of served workflows: a run's end, a signal, new files; each event starts one run
across the servers of the trigger, its origin naming the trigger and the event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.interfaces.serving import ServedAnnouncement, decode_served, served_topic
from cascade.runtime import MAX_TRIGGER_DEPTH, Engine, RunStarted, Trigger, task
from cascade.runtime.testing import eventually, serving


@task(name="load")
def load(day: str = "any") -> str:
    return day


@task(name="summarise")
def summarise(source_run: str = "", path: str = "") -> str:
    return source_run or path


@task(name="broken")
def broken() -> None:
    raise RuntimeError("no")


def etl(day: str = "any") -> Any:
    return load(day)


def report(source_run: str = "", path: str = "") -> Any:
    return summarise(source_run, path)


def _engine(broker: InMemoryBroker, source: str) -> Engine:
    return Engine(InMemoryConnector(broker, source_id=source), heartbeat_interval=None)


def _triggered(*runs: list[RunStarted]) -> list[RunStarted]:
    return [r for started in runs for r in started if r.origin and r.origin.trigger]


def _announced(broker: InMemoryBroker, source: str) -> ServedAnnouncement | None:
    raw = broker.retained(served_topic("local", "default", source, "cascade"))
    return decode_served(raw) if raw else None


async def _serving_all(broker: InMemoryBroker, *sources: str) -> None:
    await eventually(lambda: all(_announced(broker, s) is not None for s in sources))


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


WORKFLOWS = {"etl": etl, "report": report}


def _after() -> dict[str, Trigger]:
    return {
        "report_after_etl": Trigger(
            after="etl",
            workflow="report",
            params=lambda event: {"source_run": event.run_id},
        )
    }


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "one of after, signal and files"),
        ({"after": "etl", "signal": "x"}, "one of after, signal and files"),
        ({"after": "etl", "status": "Done"}, "status is one of"),
        ({"signal": "x", "status": "Failed"}, "status goes with after"),
        ({"signal": "/x"}, "signal is a topic"),
        ({"files": "/d/*.csv", "period": 0.5}, "period is at least"),
        ({"signal": "x", "catchup": True}, "go with files"),
        ({"after": "bad name"}, "a workflow's name"),
        ({"signal": "x", "max_per_minute": 0}, "max_per_minute"),
        ({"signal": "x", "workflow": "a/b"}, "a workflow's name"),
    ],
)
def test_a_bad_trigger_is_refused_when_made(options: dict[str, Any], says: str) -> None:
    """Every bad value raises ValueError naming it, when the Trigger is made."""
    with pytest.raises(ValueError, match=says):
        Trigger(**options)


def test_params_that_are_neither_a_mapping_nor_a_callable_are_refused() -> None:
    with pytest.raises(TypeError, match="params is a mapping or a callable"):
        Trigger(signal="x", params=3)  # type: ignore[arg-type]


async def test_a_trigger_of_a_workflow_not_served_is_refused(broker: InMemoryBroker) -> None:
    engine = _engine(broker, "s1")
    with pytest.raises(ValueError, match="not served"):
        await engine.serve(WORKFLOWS, triggers={"t": Trigger(after="etl", workflow="ingest")})


async def test_two_servers_start_one_report_per_etl_run_each_naming_it(
    broker: InMemoryBroker,
) -> None:
    """3 etl runs, two servers of the trigger: exactly 3 report runs, each naming its etl run."""
    one, two = _engine(broker, "s1"), _engine(broker, "s2")
    async with (
        serving(one, workflows=WORKFLOWS, triggers=_after()) as first,
        serving(two, workflows=WORKFLOWS, triggers=_after()) as second,
        InMemoryConnector(broker, presence=False) as ops,
    ):
        control = Controller(ops, issued_by="alice", timeout=3)
        await _serving_all(broker, "s1", "s2")
        etl_runs: list[str | None] = []
        for day in ("mon", "tue", "wed"):
            reply = await control.start("etl", {"day": day})
            assert reply.outcome == "started", reply.error
            etl_runs.append(reply.run_id)
        await eventually(lambda: len(_triggered(first, second)) >= 3)
        await broker.idle()  # every run end and claim dispatched: a fourth would be here
        reports = _triggered(first, second)
        followed = [r.origin.followed_run for r in reports]  # type: ignore[union-attr]
        assert None not in followed, followed
        assert None not in etl_runs, etl_runs
        assert sorted(map(str, followed)) == sorted(map(str, etl_runs))
        for r in reports:
            assert r.origin is not None
            assert r.origin.trigger == "report_after_etl"
            assert r.origin.workflow == "report"
            assert r.origin.params == {"source_run": r.origin.followed_run, "path": ""}
            assert r.origin.trigger_depth == 1
            assert f"run {r.origin.followed_run} of etl Succeeded" in (r.origin.trigger_event or "")
        assert one.stats.trigger_runs_started + two.stats.trigger_runs_started == 3


async def test_a_forged_run_end_starts_nothing(broker: InMemoryBroker) -> None:
    """A run end whose payload names another source than its topic's is refused, counted."""
    engine = _engine(broker, "s1")
    async with (
        serving(engine, workflows=WORKFLOWS, triggers=_after()) as started,
        InMemoryConnector(broker, source_id="mallory", presence=False) as forger,
    ):
        await _serving_all(broker, "s1")
        # the wire's run end (docs/protocol.md), on the topic of the login that sends it
        forged = {"source": "s1", "run_id": "a" * 32, "workflow": "etl", "status": "Succeeded"}
        await forger.publish("cascade/served/local/default/mallory/ended", forged, qos=1)
        other_org = {**forged, "source": "mallory", "run_id": "b" * 32}
        await forger.publish("cascade/served/acme/default/mallory/ended", other_org, qos=1)
        await eventually(lambda: engine.stats.trigger_events_refused == 1)
        assert _triggered(started) == []
        assert engine.stats.trigger_events == 0


async def test_a_trigger_that_starts_its_own_workflow_stops_at_its_depth(
    broker: InMemoryBroker,
) -> None:
    """etl after etl: a chain of MAX_TRIGGER_DEPTH runs, then it stops, counted."""
    engine = _engine(broker, "s1")
    loop = {"again": Trigger(after="etl", workflow="etl")}
    async with (
        serving(engine, workflows=WORKFLOWS, triggers=loop) as started,
        InMemoryConnector(broker, presence=False) as ops,
    ):
        await _serving_all(broker, "s1")
        control = Controller(ops, issued_by="alice", timeout=3)
        await control.start("etl", {})
        await eventually(lambda: engine.stats.trigger_loops_stopped == 1)
        depths = sorted(r.origin.trigger_depth for r in _triggered(started))  # type: ignore[union-attr]
        assert depths == list(range(1, MAX_TRIGGER_DEPTH + 1))


async def test_one_signal_starts_one_run_with_its_payload(broker: InMemoryBroker) -> None:
    """A signal heard by two servers starts one run; a copy of it (same id) starts none."""
    triggers = {
        "on_deploy": Trigger(
            signal="deploys/approved",
            workflow="report",
            params=lambda event: {"source_run": event.payload["by"]},
        )
    }
    one, two = _engine(broker, "s1"), _engine(broker, "s2")
    async with (
        serving(one, workflows=WORKFLOWS, triggers=triggers) as first,
        serving(two, workflows=WORKFLOWS, triggers=triggers) as second,
        InMemoryConnector(broker, presence=False) as ops,
    ):
        await _serving_all(broker, "s1", "s2")
        topic = "cascade/signal/local/default/deploys/approved"
        await ops.publish(topic, {"id": "d1", "by": "alice"}, qos=1)
        await eventually(lambda: len(_triggered(first, second)) == 1)
        await ops.publish(topic, {"id": "d1", "by": "alice"}, qos=1)  # a copy
        await ops.publish(topic, {"id": "d2", "by": "bob"}, qos=1)
        await eventually(lambda: len(_triggered(first, second)) == 2)
        runs = _triggered(first, second)
        assert sorted(r.origin.params["source_run"] for r in runs) == ["alice", "bob"]  # type: ignore[union-attr,index]
        assert runs[0].origin.trigger_event == "signal deploys/approved d1"  # type: ignore[union-attr]


async def test_a_signal_flood_is_bounded_by_its_rate(broker: InMemoryBroker) -> None:
    """Past max_per_minute, signals are dropped, counted and said in the announcement."""
    triggers = {"t": Trigger(signal="go", workflow="report", max_per_minute=2)}
    engine = _engine(broker, "s1")
    async with (
        serving(engine, workflows=WORKFLOWS, triggers=triggers) as started,
        InMemoryConnector(broker, presence=False) as ops,
    ):
        await _serving_all(broker, "s1")
        for n in range(5):
            await ops.publish("cascade/signal/local/default/go", {"id": str(n)}, qos=1)
        await eventually(lambda: engine.stats.trigger_events_dropped == 3)
        await eventually(lambda: len(_triggered(started)) == 2)
        await eventually(lambda: _announced(broker, "s1").triggers[0].dropped == 3)  # type: ignore[union-attr]
        announced = _announced(broker, "s1")
        assert announced is not None
        (entry,) = announced.triggers
        assert (entry.events, entry.dropped) == (5, 3)
        assert "max_per_minute" in entry.last_dropped


async def test_a_paused_trigger_starts_nothing_and_says_so(broker: InMemoryBroker) -> None:
    """cascade pause trigger:NAME: its events start nothing; resumed, the next ones do."""
    engine = _engine(broker, "s1")
    async with (
        serving(engine, workflows=WORKFLOWS, triggers=_after()) as started,
        InMemoryConnector(broker, presence=False) as ops,
    ):
        control = Controller(ops, issued_by="alice", timeout=3)
        await _serving_all(broker, "s1")
        await control.pause("trigger:report_after_etl", reason="db migration")
        await eventually(lambda: _announced(broker, "s1").triggers[0].paused)  # type: ignore[union-attr]
        announced = _announced(broker, "s1")
        assert announced is not None
        assert announced.triggers[0].paused_by == "alice"
        await control.start("etl", {})
        await eventually(lambda: engine.stats.trigger_events_paused == 1)
        assert _triggered(started) == []
        await control.resume("trigger:report_after_etl")
        await eventually(lambda: not _announced(broker, "s1").triggers[0].paused)  # type: ignore[union-attr]
        reply = await control.start("etl", {})
        await eventually(lambda: len(_triggered(started)) == 1)
        assert _triggered(started)[0].origin.followed_run == reply.run_id  # type: ignore[union-attr]


async def test_events_wait_while_the_server_is_full_and_start_when_room_frees(
    broker: InMemoryBroker,
) -> None:
    """max_runs 1, no queue: an etl end heard while the trigger's run holds the one place
    waits (announced), and starts once that run ends."""
    gate_open = asyncio.Event()

    @task(name="slow")
    async def slow() -> None:
        await gate_open.wait()

    def held(source_run: str = "") -> Any:
        return slow()

    triggers = {
        "t": Trigger(after="etl", workflow="held", params=lambda e: {"source_run": e.run_id})
    }
    full = _engine(broker, "s1")
    other = _engine(broker, "s2")  # runs etl, has no trigger
    async with (
        serving(
            full, workflows={"etl": etl, "held": held}, triggers=triggers, max_runs=1, max_queued=0
        ) as started,
        serving(other, workflows={"etl": etl}),
        InMemoryConnector(broker, presence=False) as ops,
    ):
        await _serving_all(broker, "s1", "s2")
        control = Controller(ops, issued_by="alice", timeout=3)
        first = await control.start("etl", {}, on="s2")
        await eventually(lambda: len(_triggered(started)) == 1)  # it holds the one place
        second = await control.start("etl", {}, on="s2")
        await eventually(lambda: _announced(broker, "s1").triggers[0].waiting == 1)  # type: ignore[union-attr]
        assert len(_triggered(started)) == 1
        gate_open.set()
        await eventually(lambda: len(_triggered(started)) == 2)
        followed = [r.origin.followed_run for r in _triggered(started)]  # type: ignore[union-attr]
        assert followed == [first.run_id, second.run_id]


async def test_two_new_files_start_two_ingest_runs_once_across_two_servers(
    broker: InMemoryBroker,
) -> None:
    """Two servers list the same 2 new files (fsspec's memory store): 2 runs between them,
    each naming its file; files there at the first listing start nothing (no catchup)."""
    import fsspec

    store = fsspec.filesystem("memory")
    root = f"/cascade-{id(broker)}"
    store.pipe(f"{root}/in/old.csv", b"there before")
    trigger = Trigger(
        files=f"memory://{root}/in/*.csv",
        period=1,
        workflow="report",
        params=lambda event: {"path": event.path},
    )
    one, two = _engine(broker, "s1"), _engine(broker, "s2")
    async with (
        serving(one, workflows=WORKFLOWS, triggers={"ingest": trigger}) as first,
        serving(two, workflows=WORKFLOWS, triggers={"ingest": trigger}) as second,
    ):
        await _serving_all(broker, "s1", "s2")
        await eventually(lambda: one.stats.trigger_events + two.stats.trigger_events == 0)
        store.pipe(f"{root}/in/a.csv", b"a")
        store.pipe(f"{root}/in/b.csv", b"b")
        await eventually(lambda: len(_triggered(first, second)) == 2, timeout=15)
        runs = _triggered(first, second)
        paths = sorted(r.origin.params["path"] for r in runs)  # type: ignore[union-attr,index]
        assert [p.rsplit("/", 1)[-1] for p in paths] == ["a.csv", "b.csv"]
        assert all((r.origin.trigger_event or "").startswith("file ") for r in runs)  # type: ignore[union-attr]
