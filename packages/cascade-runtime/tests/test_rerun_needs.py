"""A rerun runs only what the tasks it runs need: a task whose every user is reused is skipped
(not needed), said so in its plan, its events and its manifest; and each reason a plan gives is
the true one (issue 88)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message
from cascade.interfaces.serving import StartRequest, addressed_start_topic, served_topic
from cascade.runtime import (
    Engine,
    Event,
    Jump,
    Param,
    RerunError,
    Router,
    RunFinished,
    RunStarted,
    TaskCompleted,
    TaskFailedError,
    TaskRunning,
    TaskSkipped,
    bind,
    select_jump,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually

NOT_NEEDED = "not needed: every task that uses it is reused"


class HttpResponse:
    """A result without a msgpack form: never kept."""

    def __init__(self, body: str) -> None:
        self.body = body


class Fetching:
    """``load(count(fetch()))``: ``fetch`` answers an ``HttpResponse`` (not kept), ``load``
    fails while ``broken``; each call counted by name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.broken = True

        @task(name="fetch")
        def fetch() -> HttpResponse:
            self.calls["fetch"] += 1
            return HttpResponse("a b c")

        @task(name="parse")
        def parse(response: HttpResponse) -> HttpResponse:
            self.calls["parse"] += 1
            return response

        @task(name="count")
        def count(response: HttpResponse) -> int:
            self.calls["count"] += 1
            return len(response.body.split())

        @task(name="load")
        def load(n: int, *more: Any) -> int:
            self.calls["load"] += 1
            if self.broken:
                raise RuntimeError("the database is down")
            return n

        self.fetch, self.parse, self.count, self.load = fetch, parse, count, load


def engine_and_events() -> tuple[Engine, list[Event]]:
    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return engine, events


def run_ids(events: list[Event]) -> list[str]:
    return [e.run_id for e in events if isinstance(e, RunStarted)]


def ran(events: list[Event], run_id: str) -> set[str]:
    return {e.task_name for e in events if isinstance(e, TaskRunning) and e.run_id == run_id}


def skipped(events: list[Event], run_id: str) -> dict[str, str]:
    return {
        e.task_name: e.error for e in events if isinstance(e, TaskSkipped) and e.run_id == run_id
    }


async def failed_once(flow: Fetching, target: Any) -> tuple[Engine, list[Event], str]:
    engine, events = engine_and_events()
    with pytest.raises(TaskFailedError):
        await engine.run(target)
    flow.broken = False
    (first,) = run_ids(events)
    return engine, events, first


async def test_a_task_whose_only_user_is_reused_is_not_run_again() -> None:
    """The issue's case: fetch's answer is not kept, count's is; load failed. The rerun's plan
    says fetch is not needed, and the rerun skips it so: fetch ran once in all."""
    flow = Fetching()

    def target() -> Any:
        return flow.load(flow.count(flow.fetch()))

    engine, events, first = await failed_once(flow, target())
    plan = {s.task_name: (s.action, s.why) for s in await engine.plan(target(), rerun_of=first)}
    assert plan == {
        "fetch": ("skip", NOT_NEEDED),
        "count": ("reuse", "unchanged"),
        "load": ("run", "it had failed"),
    }
    assert await engine.run(target(), rerun_of=first) == 3
    second = run_ids(events)[1]
    assert flow.calls == {"fetch": 1, "count": 1, "load": 2}
    assert ran(events, second) == {"load"}
    assert skipped(events, second) == {"fetch": NOT_NEEDED}
    assert engine.results is not None
    fetched = engine.results.manifest(second).tasks["fetch#1"]
    assert (fetched.state, fetched.skipped) == ("SKIPPED", NOT_NEEDED)
    # a rerun of the rerun reuses all it can and needs fetch no more than before
    again = {s.task_name: s.action for s in await engine.plan(target(), rerun_of=second)}
    assert again == {"fetch": "skip", "count": "reuse", "load": "reuse"}


async def test_what_only_tasks_not_needed_use_is_not_needed_either() -> None:
    flow = Fetching()

    def target() -> Any:
        return flow.load(flow.count(flow.parse(flow.fetch())))

    engine, _, first = await failed_once(flow, target())
    plan = {s.task_name: (s.action, s.why) for s in await engine.plan(target(), rerun_of=first)}
    assert plan["parse"] == ("skip", NOT_NEEDED)
    assert plan["fetch"] == ("skip", "not needed: every task that uses it is reused or not needed")
    await engine.run(target(), rerun_of=first)
    assert flow.calls == {"fetch": 1, "parse": 1, "count": 1, "load": 2}


async def test_a_task_a_running_task_needs_runs_though_another_user_is_reused() -> None:
    """fetch is used by count (reused) and by load (runs): it runs, load gets its answer."""
    flow = Fetching()

    def target() -> Any:
        response = flow.fetch()
        return flow.load(flow.count(response), response)

    engine, _, first = await failed_once(flow, target())
    plan = {s.task_name: s.action for s in await engine.plan(target(), rerun_of=first)}
    assert plan == {"fetch": "run", "count": "reuse", "load": "run"}
    await engine.run(target(), rerun_of=first)
    assert flow.calls == {"fetch": 2, "count": 1, "load": 2}


async def test_a_task_run_after_by_a_task_that_runs_runs() -> None:
    """An ``after`` edge needs its task as an argument does: parse, used by count (reused)
    and run after by load (runs), runs, and so does fetch, which it takes."""
    flow = Fetching()

    def target() -> Any:
        parsed = flow.parse(flow.fetch())
        return flow.load(flow.count(parsed)).after(parsed)

    engine, _, first = await failed_once(flow, target())
    plan = {s.task_name: s.action for s in await engine.plan(target(), rerun_of=first)}
    assert plan == {"fetch": "run", "parse": "run", "count": "reuse", "load": "run"}
    await engine.run(target(), rerun_of=first)
    assert flow.calls == {"fetch": 2, "parse": 2, "count": 1, "load": 2}


async def test_a_task_of_the_target_runs_whoever_else_uses_it() -> None:
    flow = Fetching()

    def target() -> Any:
        response = flow.fetch()
        return [response, flow.load(flow.count(response))]

    engine, _, first = await failed_once(flow, target())
    plan = {s.task_name: s.action for s in await engine.plan(target(), rerun_of=first)}
    assert plan == {"fetch": "run", "count": "reuse", "load": "run"}
    response, loaded = await engine.run(target(), rerun_of=first)
    assert (response.body, loaded) == ("a b c", 3)


async def test_a_refused_kept_result_runs_its_task_and_what_it_needs() -> None:
    """count's kept file was removed: count runs (force), so fetch, which it needs, runs."""
    flow = Fetching()

    def target() -> Any:
        return flow.load(flow.count(flow.fetch()))

    engine, _, first = await failed_once(flow, target())
    assert engine.results is not None
    kept = engine.results.manifest(first).tasks["count#1"]
    assert kept.fingerprint is not None
    engine.results.fs.rm(engine.results.result_path(kept.fingerprint))
    plan = {s.task_name: s.action for s in await engine.plan(target(), rerun_of=first)}
    assert plan == {"fetch": "run", "count": "force", "load": "run"}
    await engine.run(target(), rerun_of=first)
    assert flow.calls == {"fetch": 2, "count": 2, "load": 2}


async def test_a_branch_its_router_did_not_choose_is_said_not_routed_in_a_rerun() -> None:
    """The first run took route x; a rerun choosing y runs b, saying b was not routed (its
    router on parameter p did not choose it), not that a task it needs had failed."""
    calls: Counter[str] = Counter()

    def named(name: str) -> Any:
        @task(name=name)
        def made(*values: Any) -> str:
            calls[name] += 1
            if name == "report" and calls[name] == 1:
                raise RuntimeError("once")
            return name

        return made

    routed: Router[Any] = Router(Param("p", default="x"), {"x": named("a")(), "y": named("b")()})
    engine, events = engine_and_events()
    with pytest.raises(TaskFailedError):
        await engine.run(named("report")(routed))
    (first,) = run_ids(events)
    plan = {
        s.task_name: (s.action, s.why)
        for s in await engine.plan(named("report")(routed), rerun_of=first, params={"p": "y"})
    }
    assert plan["b"] == ("run", "it was not routed: its router on parameter p did not choose it")
    assert plan["a"][0] == "skip"
    assert engine.results is not None
    assert engine.results.manifest(first).tasks["b#1"].skipped == "not routed"


async def test_a_task_skipped_for_a_failure_upstream_says_so_in_the_plan() -> None:
    flow = Fetching()

    @task(name="boom")
    def boom() -> int:
        raise RuntimeError("no")

    engine, events = engine_and_events()
    with pytest.raises(TaskFailedError):
        await engine.run(flow.load(boom()))
    (first,) = run_ids(events)
    plan = {s.task_name: s.why for s in await engine.plan(flow.load(boom()), rerun_of=first)}
    assert plan == {"boom": "it had failed", "load": "it was skipped (a task it needs had failed)"}


async def test_a_rerun_of_a_run_that_succeeded_runs_nothing() -> None:
    """Every task kept is reused; fetch, whose answer was not kept, is not needed."""
    flow = Fetching()
    flow.broken = False
    engine, events = engine_and_events()
    target = flow.load(flow.count(flow.fetch()))
    await engine.run(target)
    (first,) = run_ids(events)
    plan = {s.task_name: s.action for s in await engine.plan(target, rerun_of=first)}
    assert plan == {"fetch": "skip", "count": "reuse", "load": "reuse"}
    assert await engine.run(target, rerun_of=first) == 3
    second = run_ids(events)[1]
    assert not ran(events, second)
    completed = {e.task_name for e in events if isinstance(e, TaskCompleted) and e.run_id == second}
    assert completed == {"count", "load"}


async def test_a_refused_result_of_a_task_not_needed_is_said_and_counted_not_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """count's file is gone, but load, its one user, is reused: count is not run; the plan,
    a warning and the manifest say its result was refused, and it is counted."""
    flow = Fetching()
    flow.broken = False

    def target() -> Any:
        return flow.load(flow.count(flow.fetch()))

    engine, events = engine_and_events()
    await engine.run(target())
    (first,) = run_ids(events)
    assert engine.results is not None
    kept = engine.results.manifest(first).tasks["count#1"]
    assert kept.fingerprint is not None
    engine.results.fs.rm(engine.results.result_path(kept.fingerprint))
    missing = f"its stored result (from run {first[:12]}) is missing"
    plan = {s.task_name: (s.action, s.why) for s in await engine.plan(target(), rerun_of=first)}
    assert plan["count"] == ("skip", f"{NOT_NEEDED}; {missing}")
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        assert await engine.run(target(), rerun_of=first) == 3
    second = run_ids(events)[1]
    assert flow.calls == {"fetch": 1, "count": 1, "load": 1}
    assert engine.stats.results_refused == 1
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("task count ")]
    assert "is not run" in said
    assert missing in said
    assert engine.results.manifest(second).tasks["count#1"].refused == missing


async def test_a_loop_that_goes_on_from_its_kept_jump_runs_what_it_takes() -> None:
    """The loop's third step failed; the rerun goes on from its kept first jump, so fetch,
    whose answer each step takes and which was not kept, runs again (reused, the loop is no
    task that runs: that would skip fetch and leave the loop's steps without its answer)."""
    flow = Fetching()
    steps: list[int] = []

    @task(name="walk")
    def walk(response: HttpResponse, n: int) -> Any:
        steps.append(n)
        if n == 3 and flow.broken:
            raise RuntimeError("three")
        return len(response.body) + n if n == 3 else Jump("again", {"n": n + 1})

    def target() -> Any:
        loop = walk(flow.fetch(), 1)
        bind(loop, select_jump({"again": loop}))
        return loop

    engine, _, first = await failed_once(flow, target())
    plan = {s.task_name: s.action for s in await engine.plan(target(), rerun_of=first)}
    assert plan == {"fetch": "run", "walk": "reuse"}
    steps.clear()
    assert await engine.run(target(), rerun_of=first) == 8
    # its iterations take fetch's answer itself, which has no canonical encoding: they run
    assert (flow.calls["fetch"], steps) == (2, [2, 3])


async def test_a_carry_on_does_not_send_the_request_again_that_its_kept_result_answered(
    tmp_path: Path,
) -> None:
    """The issue's carry-on: server-1 dies while load is in flight, count's result kept and
    fetch's answer not; server-2 carries the run on: load runs, fetch is not needed."""
    flow = Fetching()
    flow.broken = False
    in_flight = asyncio.Event()
    never = asyncio.Event()

    @task(name="load")
    async def load(n: int) -> int:
        flow.calls["load"] += 1
        if flow.calls["load"] == 1:
            in_flight.set()
            await never.wait()  # until its engine is gone
        return n

    def workflow() -> Any:
        return load(flow.count(flow.fetch()))

    broker = InMemoryBroker()
    first = InMemoryConnector(broker, source_id="server-1")
    second = InMemoryConnector(broker, source_id="server-2")
    engines = [Engine(c, heartbeat_interval=None, results=tmp_path) for c in (first, second)]
    recorder = EventRecorder()
    engines[1].events.subscribe(recorder)
    served = [asyncio.create_task(e.serve({"fetching": workflow})) for e in engines]
    try:
        async with InMemoryConnector(broker, source_id="operator", presence=False) as asker:
            announced: set[str] = set()

            def heard(message: Message) -> None:
                announced.add(message.topic.rsplit("/", 1)[-1])

            for source in ("server-1", "server-2"):
                await asker.subscribe(served_topic("local", "default", source), heard)
            await eventually(lambda: announced == {"server-1", "server-2"})
            topic = addressed_start_topic("local", "default", "fetching", "server-1")
            await asker.publish(topic, StartRequest(id="r1", workflow="fetching"), qos=1)
            await asyncio.wait_for(in_flight.wait(), 10)
            store = engines[0].results
            assert store is not None
            runs = tmp_path / "runs"  # its journal is written off the loop: it comes

            def journals() -> list[str]:
                return [path.name for path in runs.iterdir()] if runs.is_dir() else []

            await eventually(lambda: len(journals()) == 1)
            (lost,) = journals()

            def journaled() -> bool:  # its journal's head is written off the loop
                try:
                    return "count#1" in store.manifest(lost).tasks
                except RerunError:
                    return False

            await eventually(journaled)
            await first.crash()  # its will says it is offline; its run is lost
            await recorder.until(
                lambda: any(isinstance(e, RunFinished) for e in recorder.events), timeout=20
            )
        (carried,) = [e for e in recorder.events if isinstance(e, RunFinished)]
        assert carried.status == "Succeeded"
        assert flow.calls == {"fetch": 1, "count": 1, "load": 2}
        assert skipped(recorder.events, carried.run_id) == {"fetch": NOT_NEEDED}
    finally:
        for task_ in served:
            task_.cancel()
        await asyncio.gather(*served, return_exceptions=True)
