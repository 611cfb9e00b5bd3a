"""Task.map: a task once per item of lists known at the start or computed upstream, each item a
task of its own (``<map's id>[i]``), the map a lazy list of their results."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import TaskStateEvent, events_topic
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Event,
    MapError,
    MappedLazyResult,
    Param,
    RunCancelledError,
    RunCounters,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskFailedError,
    TaskHeld,
    TaskMapped,
    TaskRunning,
    TaskSkipped,
    current_task,
    inject,
    resource,
    task,
    unmapped,
)
from cascade.runtime.testing import EventRecorder


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def transform(x: int, factor: int = 1) -> int:
    return x * factor


@task
async def total(values: list[int]) -> int:
    return sum(values)


def _recorded(engine: Engine) -> list[Event]:
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


def _of(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_a_map_over_an_upstream_result_makes_one_task_per_item_in_order() -> None:
    """extract(5) gives the rows; transform runs once per row, each a task of its own named
    after the map (``transform-N[i]``), ``factor`` given whole to each; total gets the list."""
    mapped = transform.map(x=extract(5), factor=unmapped(10))
    assert isinstance(mapped, MappedLazyResult)
    engine = Engine()
    events = _recorded(engine)
    assert await engine.run(total(mapped)) == 100
    (made,) = _of(events, TaskMapped)
    assert (made.task_id, made.task_name, made.items) == (mapped.task_id, "transform", 5)
    items = [e for e in _of(events, TaskCompleted) if e.task_id.startswith(f"{mapped.task_id}[")]
    assert sorted(e.task_id for e in items) == [f"{mapped.task_id}[{i}]" for i in range(5)]
    assert {e.task_name for e in items} == {"transform"}
    # the map itself: made its items, then completed once they all had, before total ran
    of_map = [(type(e).__name__) for e in events if getattr(e, "task_id", "") == mapped.task_id]
    assert of_map == ["TaskMapped", "TaskCompleted"]
    order = [getattr(e, "task_id", "") for e in events if isinstance(e, TaskCompleted)]
    assert order.index(mapped.task_id) > max(order.index(e.task_id) for e in items)
    assert order[-1].startswith("total-")
    (started,) = _of(events, RunStarted)
    assert started.task_count == 3  # extract, the map, total: the items join as it runs


async def test_a_map_over_lists_given_zips_them_and_can_be_mapped_again() -> None:
    doubled = transform.map(x=[1, 2, 3], factor=[2, 2, 2])
    assert await Engine().run(transform.map(x=doubled, factor=unmapped(3))) == [6, 12, 18]
    assert await Engine().run(transform.map(x=(4, 5))) == [4, 5]
    assert await Engine().run(transform.map(x=range(3), factor=unmapped(Param("f", default=2))))
    assert await Engine().run(total(transform.map(x=[]))) == 0


async def test_a_map_over_a_param() -> None:
    rows: Param[list[int]] = Param("rows", type=list[int])
    mapped = transform.map(x=rows, factor=unmapped(2))
    assert await Engine().run(mapped, params={"rows": [1, 2]}) == [2, 4]


def test_a_map_with_nothing_to_map_or_lists_of_two_lengths_is_refused_at_once() -> None:
    with pytest.raises(MapError, match="needs a keyword to map over"):
        transform.map(factor=unmapped(2))
    with pytest.raises(MapError, match="x: 2, factor: 3"):
        transform.map(x=[1, 2], factor=[1, 2, 3])
    with pytest.raises(MapError, match="keyword x must be a list or tuple"):
        transform.map(x="abc")
    with pytest.raises(MapError, match=r"keyword x must be a list or tuple.*not dict"):
        transform.map(x={"a": 1})
    assert issubclass(MapError, ValueError)


async def test_a_map_whose_upstream_gives_no_list_fails_naming_the_keyword() -> None:
    @task
    def not_rows() -> int:
        return 7

    after: list[Any] = []

    @task
    def report(values: list[int]) -> None:
        after.append(values)

    engine = Engine()
    events = _recorded(engine)
    mapped = transform.map(x=not_rows())
    with pytest.raises(TaskFailedError) as raised:
        await engine.run(report(mapped))
    assert raised.value.task_id == mapped.task_id
    (failed,) = _of(events, TaskFailed)
    assert failed.error == (
        "MapError: map's keyword x must be a list or tuple (one value per item), not int"
    )
    assert after == []
    assert [e.task_name for e in _of(events, TaskSkipped)] == ["report"]
    longer = transform.map(x=extract(2), factor=extract(3))
    with pytest.raises(TaskFailedError, match=r"differ in length \(x: 2, factor: 3\)"):
        await Engine().run(longer)


async def test_a_failed_item_fails_only_itself_and_what_needs_the_list() -> None:
    @task
    def check(x: int) -> int:
        if x == 2:
            raise ValueError(f"row {x} is bad")
        return x

    @task
    async def side() -> str:
        return "side ran"

    engine = Engine()
    events = _recorded(engine)
    mapped = check.map(x=[0, 1, 2, 3])
    with pytest.raises(TaskFailedError) as raised:
        await engine.run([total(mapped), side()])
    assert raised.value.task_id == f"{mapped.task_id}[2]"
    assert raised.value.failed == [f"{mapped.task_id}[2]"]
    completed = {e.task_id for e in _of(events, TaskCompleted)}
    assert {f"{mapped.task_id}[{i}]" for i in (0, 1, 3)} <= completed
    assert any(t.startswith("side-") for t in completed)
    skipped = {e.task_id: e.error for e in _of(events, TaskSkipped)}
    assert skipped[mapped.task_id] == (f"upstream task 'check' ({mapped.task_id}[2]) failed")
    assert len(skipped) == 2  # the map, and total that needs its list


async def test_retries_and_options_of_a_map_apply_to_each_item() -> None:
    tries: dict[int, int] = {}

    @task
    def flaky(x: int) -> int:
        tries[x] = tries.get(x, 0) + 1
        if tries[x] < 2:
            raise ConnectionError("once")
        return x

    assert await Engine().run(flaky.map(x=[1, 2, 3]).with_retry(2)) == [1, 2, 3]
    assert tries == {1: 2, 2: 2, 3: 2}


async def test_run_if_on_a_map_skips_it_whole() -> None:
    engine = Engine()
    events = _recorded(engine)
    mapped = transform.map(x=extract(3)).run_if(Param("go", default=False))
    with pytest.raises(DependencyMissingError):
        await engine.run(mapped)
    assert _of(events, TaskMapped) == []
    assert [e.error for e in _of(events, TaskSkipped)] == ["condition false"]


async def test_an_item_knows_its_key_and_the_engine_bounds_how_many_run_at_once() -> None:
    running = 0
    most = 0
    keys: list[str] = []

    @task
    async def slow(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        context = current_task()
        assert context is not None
        keys.append(context.key)
        await asyncio.sleep(0)
        running -= 1
        return x

    assert await Engine(max_concurrency=3).run(slow.map(x=list(range(20)))) == list(range(20))
    assert most == 3
    assert sorted(keys) == sorted(f"slow#1[{i}]" for i in range(20))


async def test_a_held_item_is_decided_by_its_id_and_the_map_takes_the_given_value() -> None:
    @task(on_failure="hold")
    def parse(x: int) -> int:
        if x == 1:
            raise ValueError("row 1 does not parse")
        return x * 10

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    mapped = parse.map(x=[0, 1, 2])
    running = asyncio.create_task(engine.run(mapped))
    await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
    (held,) = [e for e in recorder.events if isinstance(e, TaskHeld)]
    assert held.task_id == f"{mapped.task_id}[1]"
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    reply = engine.decide(started.run_id, held.task_id, "complete", result=-1)
    assert reply is not None
    assert reply.outcome == "applied"
    assert await running == [0, -1, 20]
    # a list with a given value in it is a decision's, not a computation's: never kept as one
    (ended,) = [
        e for e in recorder.events if isinstance(e, TaskCompleted) and e.task_id == mapped.task_id
    ]
    assert ended.not_kept == "decided upstream: parse completed by a decision"


async def test_a_cancel_ends_every_item_and_the_map() -> None:
    release = threading.Event()

    @task
    def wait(x: int) -> int:
        release.wait(5)
        return x

    engine = Engine(max_concurrency=2)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    mapped = wait.map(x=list(range(5)))
    running = asyncio.create_task(engine.run(mapped))
    await recorder.until(lambda: sum(isinstance(e, TaskRunning) for e in recorder.events) >= 3)
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    report = engine.cancel(started.run_id)
    assert report is not None
    assert (len(report.abandoned), report.not_started) == (2, 3)
    with pytest.raises(RunCancelledError):
        await running
    release.set()
    ended = {e.task_id for e in recorder.events if isinstance(e, TaskCancelled)}
    assert ended == {mapped.task_id, *(f"{mapped.task_id}[{i}]" for i in range(5))}


async def test_the_run_counts_the_items_as_they_are_made() -> None:
    """The counters a heartbeat publishes: the run's tasks grow by the items, none pending at
    the end, none running."""
    counters = RunCounters()
    engine = Engine()
    seq = 0

    def count(event: Event) -> None:
        nonlocal seq
        seq += 1
        counters.update(event, seq)

    engine.events.subscribe(count)
    await engine.run(total(transform.map(x=extract(4))))
    assert (counters.total, counters.completed, counters.running, counters.pending) == (7, 7, 0, 0)


async def test_a_map_over_the_broker_publishes_every_item_and_how_many_it_made() -> None:
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, source_id="host-42", presence=False)
    engine = Engine(connector, org_id="acme", project_id="shop", heartbeat_interval=None)
    events = _recorded(engine)
    mapped = transform.map(x=extract(3))
    assert await engine.run(total(mapped)) == 3
    (started,) = _of(events, RunStarted)
    topic = events_topic("acme", "shop", started.run_id)
    bodies = [json.loads(m.raw)["body"] for m in broker.history if m.topic == topic]
    states = {(b.get("task_id"), b.get("state")) for b in bodies}
    for i in range(3):
        assert (f"{mapped.task_id}[{i}]", "COMPLETED") in states
    (made,) = [b for b in bodies if b.get("items") is not None]
    assert (made["task_id"], made["state"], made["items"]) == (mapped.task_id, "RUNNING", 3)
    assert all("items" not in b for b in bodies if b is not made)


async def test_a_rerun_reuses_a_map_that_completed_as_a_whole() -> None:
    calls: list[int] = []

    @task
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    target = total(square.map(x=extract(3)))
    assert await engine.run(target) == 5
    (first,) = [e.run_id for e in _of(events, RunStarted)]
    assert await engine.run(total(square.map(x=extract(3))), rerun_of=first) == 5
    assert sorted(calls) == [0, 1, 2]  # the map's list was reused: no item ran again
    assert engine.results is not None
    manifest = engine.results.manifest(first)
    assert manifest.tasks["square#1"].state == "COMPLETED"


async def test_a_rerun_after_an_item_failed_reuses_the_items_that_completed() -> None:
    """One item of four fails; once fixed, a rerun runs it alone: the three others end
    COMPLETED at once with their kept results (reused_from the first run), in the map's list."""
    calls: list[int] = []
    broken = True

    @task
    def square(x: int) -> int:
        calls.append(x)
        if broken and x == 2:
            raise ValueError("row 2 is bad")
        return x * x

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(total(square.map(x=extract(4))))
    (first,) = [e.run_id for e in _of(events, RunStarted)]
    assert engine.results is not None
    kept = engine.results.manifest(first).tasks
    assert [kept[f"square#1[{i}]"].state for i in range(4)] == [
        "COMPLETED",
        "COMPLETED",
        "FAILED",
        "COMPLETED",
    ]
    broken = False
    calls.clear()
    reused_before = engine.stats.results_reused
    assert await engine.run(total(square.map(x=extract(4))), rerun_of=first) == 14
    second = [e.run_id for e in _of(events, RunStarted)][1]
    assert calls == [2]
    reused = {
        e.task_id.rsplit("[", 1)[-1]: e.reused_from
        for e in _of(events, TaskCompleted)
        if e.run_id == second and "[" in e.task_id
    }
    assert reused == {"0]": first, "1]": first, "2]": None, "3]": first}
    assert engine.stats.results_reused - reused_before == 4  # extract and three items
    # rerun="all" runs every item again
    calls.clear()
    assert await engine.run(total(square.map(x=extract(4))), rerun_of=second, rerun="all") == 14
    assert sorted(calls) == [0, 1, 2, 3]


async def test_a_rerun_from_a_map_whose_item_failed_runs_every_item_again() -> None:
    """``rerun="from"`` forces the task it names and what is downstream: a map of them whose
    item had failed makes its items again, reusing none (its kept items were reused, as a
    rerun from failure does), and its plan says ``force``."""
    calls: list[int] = []
    broken = True

    @task
    def square(x: int) -> int:
        calls.append(x)
        if broken and x == 2:
            raise ValueError("row 2 is bad")
        return x * x

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(total(square.map(x=extract(4))))
    (first,) = [e.run_id for e in _of(events, RunStarted)]
    broken = False
    calls.clear()
    target = total(square.map(x=extract(4)))
    plan = {
        s.task_name: s
        for s in await engine.plan(target, rerun_of=first, rerun="from", from_task="square")
    }
    assert plan["square"].action == "force"
    assert plan["square"].why.startswith("rerun from square")
    assert plan["extract"].action == "reuse"
    assert await engine.run(target, rerun_of=first, rerun="from", from_task="square") == 14
    assert sorted(calls) == [0, 1, 2, 3]


async def test_an_items_fingerprint_is_its_tasks_called_on_its_values() -> None:
    @task
    def square(x: int) -> int:
        return x * x

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    await engine.run([square.map(x=[3, 4]), square(x=4)])
    (run_id,) = [e.run_id for e in _of(events, RunStarted)]
    assert engine.results is not None
    tasks = engine.results.manifest(run_id).tasks
    assert tasks["square#1[1]"].fingerprint == tasks["square#2"].fingerprint
    assert tasks["square#1[0]"].fingerprint != tasks["square#2"].fingerprint
    others = {t.fingerprint for key, t in tasks.items() if key != "square#1"}
    assert tasks["square#1"].fingerprint not in others  # the map is not its task called once


async def test_the_items_of_a_map_get_the_resources_their_task_injects() -> None:
    opened: list[str] = []

    @resource
    def ledger() -> Iterator[dict[str, int]]:
        opened.append("ledger")
        yield {"rate": 3}

    @task
    def convert(amount: int, book: dict[str, int] = inject("ledger")) -> int:
        return amount * book["rate"]

    @task
    def tag(amount: int, label: str) -> str:
        return f"{label}{amount}"

    engine = Engine(resources=[ledger])
    assert await engine.run(convert.map(amount=[1, 2, 3])) == [3, 6, 9]
    assert opened == ["ledger"]  # once for the run, shared by the items
    assert await engine.run(tag.map(amount=[1], label=unmapped(inject("ledger")))) == [
        "{'rate': 3}1"
    ]


def test_a_maps_running_with_its_items_decodes_as_the_protocol_says() -> None:
    body = {"type": "TaskStateEvent", "task_id": "t-1", "task_name": "t", "state": "RUNNING"}
    assert msgspec.convert({**body, "items": 10_000}, TaskStateEvent).items == 10_000
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**body, "items": -1}, TaskStateEvent)


async def test_a_maps_items_ask_for_the_system_resources_the_map_asks_for() -> None:
    running = 0
    most = 0

    @task
    async def train(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1
        return x

    engine = Engine(system_resources={"gpu_slots": 2}, max_concurrency=8)
    mapped = train.map(x=list(range(6))).with_constraints(gpu_slots=1)
    assert await engine.run(mapped) == list(range(6))
    assert most == 2


async def test_a_reruns_plan_says_how_many_items_of_a_map_it_reuses_and_the_rerun_does() -> None:
    """A map of 20 items, one failed, another's kept file rewritten: the plan says the map runs
    again, 18 of its 20 items reused and 2 run; the rerun then reuses those 18, runs those 2."""
    broken = True

    @task
    def square(x: int) -> int:
        if broken and x == 7:
            raise ValueError("row 7 is bad")
        return x * x

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(total(square.map(x=extract(20))))
    (first,) = [e.run_id for e in _of(events, RunStarted)]
    broken = False
    store = engine.results
    assert store is not None
    rewritten = store.manifest(first).tasks["square#1[3]"].fingerprint
    assert rewritten is not None
    store.fs.pipe_file(store.result_path(rewritten), msgspec.msgpack.encode(3000))
    plan = await engine.plan(total(square.map(x=extract(20))), rerun_of=first)
    step = {s.task_name: s for s in plan}["square"]
    assert (step.action, step.items, step.items_reused) == ("run", 20, 18)
    assert step.why == "1 of 20 items had failed; 18 kept will be reused, 2 run again"
    assert await engine.run(total(square.map(x=extract(20))), rerun_of=first) == sum(
        x * x for x in range(20)
    )
    second = _of(events, RunStarted)[1].run_id
    items = [e for e in events if isinstance(e, TaskCompleted) and e.run_id == second
             and e.task_name == "square" and "[" in e.task_id]  # fmt: skip
    assert sum(e.reused_from == first for e in items) == step.items_reused
    ran = [e.task_id for e in _of(events, TaskRunning) if e.run_id == second and "[" in e.task_id]
    assert sorted(task_id.rsplit("[", 1)[1] for task_id in ran) == ["3]", "7]"]


async def test_a_reruns_plan_counts_a_maps_items_over_a_param_and_not_over_what_runs() -> None:
    """A map over a bound param's list: its items are counted (the list changed: the new item
    runs); a map over an upstream that runs again: not knowable, not counted."""
    broken = True

    @task
    def square(x: int) -> int:
        if broken and x == 2:
            raise ValueError("row 2 is bad")
        return x * x

    @task
    def rows(n: int) -> list[int]:
        if broken:
            raise ValueError("the source is down")
        return list(range(n))

    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    xs: Param[list[int]] = Param("xs", default=[0, 1, 2, 3])
    with pytest.raises(TaskFailedError):
        await engine.run([total(square.map(x=xs)), total(square.map(x=rows(3)))])
    (first,) = [e.run_id for e in _of(events, RunStarted)]
    broken = False
    target = [total(square.map(x=xs)), total(square.map(x=rows(3)))]
    plan = await engine.plan(target, rerun_of=first, params={"xs": [0, 1, 2, 3, 4]})
    given, computed = [s for s in plan if s.task_name == "square"]
    assert (given.action, given.items, given.items_reused) == ("run", 5, 3)
    assert given.why == "1 of 4 items had failed; 3 kept will be reused, 2 run again"
    assert (computed.action, computed.items, computed.items_reused) == ("run", None, None)
