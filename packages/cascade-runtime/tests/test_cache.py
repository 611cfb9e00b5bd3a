"""with_cache: a task takes the result any earlier run kept for its fingerprint (proven, within
its expire; never a value decided upstream: ``test_results_trust``), or asks a cache policy of
the user's."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Envelope,
    RunSnapshot,
    TaskStateEvent,
    decode_envelope,
    telemetry_filter,
)
from cascade.interfaces.commands import SnapshotRequest, snapshot_request_topic
from cascade.runtime import (
    CacheError,
    Engine,
    Event,
    FileExistenceCache,
    ResultStore,
    RunStarted,
    TaskCached,
    TaskCompleted,
    TaskEvent,
    task,
)
from cascade.runtime.testing import eventually


def memory_url() -> str:
    """A store of its own per test: fsspec's memory file system is one per process."""
    return f"memory://cache-{uuid.uuid4().hex}"


@pytest.fixture(params=["directory", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A local directory, and fsspec's memory file system: the same rules for both."""
    return str(tmp_path / "kept") if request.param == "directory" else memory_url()


class Recorded:
    """Every event of an engine's runs."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[Event] = []
        engine.events.subscribe(self.events.append)

    def run_ids(self) -> list[str]:
        return [e.run_id for e in self.events if isinstance(e, RunStarted)]

    def of(self, run_id: str, name: str) -> list[TaskEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, TaskEvent) and e.run_id == run_id and e.task_name == name
        ]

    def completed(self, run_id: str, name: str) -> TaskCompleted:
        (found,) = [e for e in self.of(run_id, name) if isinstance(e, TaskCompleted)]
        return found


class Costly:
    """``report(extract(n).with_cache(...))``, counting each function's calls."""

    def __init__(self, **cache: Any) -> None:
        self.calls = {"extract": 0, "report": 0}
        self.cache = cache

        @task(name="extract")
        def extract(n: int) -> list[int]:
            self.calls["extract"] += 1
            return list(range(n))

        @task(name="report")
        async def report(rows: list[int]) -> int:
            self.calls["report"] += 1
            return sum(rows)

        self.extract, self.report = extract, report

    def target(self, n: int = 4) -> Any:
        return self.report(self.extract(n).with_cache(**self.cache))


async def run_once(engine: Engine, target: Any) -> tuple[Any, str]:
    """The run's result and its id."""
    started: list[str] = []
    stop = engine.events.subscribe(
        lambda e: started.append(e.run_id) if isinstance(e, RunStarted) else None
    )
    try:
        result = await engine.run(target)
    finally:
        stop()
    return result, started[0]


def cache_entry_path(engine: Engine, run_id: str, key: str) -> str:
    store = engine.results
    assert store is not None
    fingerprint = store.manifest(run_id).tasks[key].fingerprint
    assert fingerprint is not None
    return store.cache_path(fingerprint)


def dated(engine: Engine, run_id: str, key: str, seconds_ago: float) -> None:
    """Date the cache entry of ``key`` (kept by ``run_id``) ``seconds_ago``."""
    store = engine.results
    assert store is not None
    path = cache_entry_path(engine, run_id, key)
    entry = msgspec.json.decode(store.fs.cat_file(path))
    entry["at"] = time.time() - seconds_ago
    store.fs.pipe_file(path, msgspec.json.encode(entry))


async def test_a_cached_task_takes_the_result_an_earlier_run_kept(store_url: str) -> None:
    """The second run's extract ends COMPLETED at once, cached from the first run, without a
    RUNNING; report runs on its value; the manifest names the run and the file's proof."""
    wf = Costly()
    engine = Engine(results=store_url)
    recorded = Recorded(engine)
    assert (await run_once(engine, wf.target()))[0] == 6
    assert (await run_once(engine, wf.target()))[0] == 6
    first, second = recorded.run_ids()
    assert wf.calls == {"extract": 1, "report": 2}
    assert [type(e).__name__ for e in recorded.of(second, "extract")] == ["TaskCached"]
    hit = recorded.completed(second, "extract")
    assert (hit.cached, hit.reused_from, hit.not_kept) == (True, first, None)
    assert recorded.completed(first, "extract").cached is False
    assert engine.stats.results_cached == 1
    store = engine.results
    assert store is not None
    kept, took = store.manifest(first).tasks["extract#1"], store.manifest(second).tasks["extract#1"]
    assert (took.from_run, took.size, took.sha256) == (first, kept.size, kept.sha256)
    # a rerun of the second run reuses it, by the proof the cache carried over
    calls = dict(wf.calls)
    assert await engine.run(wf.target(), rerun_of=second) == 6
    assert wf.calls == calls


async def test_a_task_cached_in_the_store_needs_one() -> None:
    """Without Engine(results=...), the run fails at its start naming the task: nothing ran."""
    wf = Costly()
    engine = Engine()
    target = wf.target()
    with pytest.raises(CacheError, match=r"task 'extract' \(extract-\d+\) is cached .* Engine\("):
        await engine.run(target)
    assert isinstance(CacheError("x"), ValueError)
    assert wf.calls == {"extract": 0, "report": 0}
    assert engine.stats.runs == 0


@pytest.mark.parametrize(
    ("policy", "expire", "said"),
    [
        ("a path", None, "policy must have check"),
        (None, -1, "expire must be finite and >= 0"),
        (None, float("inf"), "expire must be finite and >= 0"),
        (None, "1h", "expire must be seconds or a timedelta, not str"),
        (None, True, "expire must be seconds or a timedelta, not bool"),
        (FileExistenceCache("x"), 60, "expire goes with the results store"),
    ],
)
def test_with_cache_says_what_is_wrong(policy: Any, expire: Any, said: str) -> None:
    wf = Costly()
    with pytest.raises(CacheError, match=said):
        wf.extract.with_cache(policy, expire=expire)
    with pytest.raises(CacheError, match=said):
        wf.extract(3).with_cache(policy, expire=expire)


async def test_a_task_cached_as_a_whole_or_one_call_of_it() -> None:
    """Task.with_cache caches every call; LazyResult.with_cache that call alone."""
    wf = Costly()
    engine = Engine(results=memory_url())
    every = wf.extract.with_cache()
    await engine.run([every(2), every(3), wf.extract(4).with_cache(), wf.extract(5)])
    assert wf.calls["extract"] == 4
    recorded = Recorded(engine)
    assert await engine.run([every(2), every(3), wf.extract(4).with_cache(), wf.extract(5)]) == [
        [0, 1],
        [0, 1, 2],
        [0, 1, 2, 3],
        [0, 1, 2, 3, 4],
    ]
    assert wf.calls["extract"] == 5  # extract(5) alone ran again
    (run_id,) = recorded.run_ids()
    cached = [e.cached for e in recorded.of(run_id, "extract") if isinstance(e, TaskCompleted)]
    assert sorted(cached) == [False, True, True, True]


async def test_two_engines_sharing_a_store_directory_share_the_cache(tmp_path: Path) -> None:
    """Two engines computing the same cached task at once both keep it (one entry stands);
    a third engine then takes it, from whichever run's entry stood."""
    wf = Costly()
    one, two = Engine(results=tmp_path / "kept"), Engine(results=tmp_path / "kept")
    (a, run_a), (b, run_b) = await asyncio.gather(
        run_once(one, wf.target(100)), run_once(two, wf.target(100))
    )
    assert a == b == 4950
    third = Engine(results=ResultStore(tmp_path / "kept"))
    recorded = Recorded(third)
    assert (await run_once(third, wf.target(100)))[0] == 4950
    (run_c,) = recorded.run_ids()
    assert recorded.completed(run_c, "extract").reused_from in (run_a, run_b)
    assert wf.calls["extract"] == 2
    assert not list((tmp_path / "kept").rglob("*.partial"))


async def test_a_result_older_than_its_expire_is_computed_again(store_url: str) -> None:
    wf = Costly(expire=60)
    engine = Engine(results=store_url)
    _, first = await run_once(engine, wf.target())
    dated(engine, first, "extract#1", 3600)
    recorded = Recorded(engine)
    assert (await run_once(engine, wf.target()))[0] == 6
    (second,) = recorded.run_ids()
    assert wf.calls["extract"] == 2
    assert recorded.completed(second, "extract").cached is False
    store = engine.results
    assert store is not None
    refused = store.manifest(second).tasks["extract#1"].refused
    assert (
        refused
        == f"its cached result (from run {first[:12]}) is 3,600 s old, over its expire (60 s)"
    )
    assert engine.stats.results_refused == 1
    # the second run kept it anew: a third takes it
    assert (await run_once(engine, wf.target()))[0] == 6
    assert wf.calls["extract"] == 2
    # an older one with a longer expire (a timedelta), or none at all
    dated(engine, second, "extract#1", 3600)
    for cache in ({"expire": timedelta(hours=2)}, {}):
        wf.cache = cache
        assert (await run_once(engine, wf.target()))[0] == 6
    assert wf.calls["extract"] == 2


async def test_an_entry_dated_ahead_never_expires_with_expire(tmp_path: Path) -> None:
    """One dated far ahead (a clock, or whoever may write the store) is refused under expire."""
    wf = Costly(expire=60)
    engine = Engine(results=tmp_path)
    _, first = await run_once(engine, wf.target())
    dated(engine, first, "extract#1", -86_400)
    await run_once(engine, wf.target())
    assert wf.calls["extract"] == 2
    assert engine.stats.results_refused == 1


async def test_a_tampered_cached_result_is_refused_and_computed_again(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    wf = Costly()
    engine = Engine(results=store_url)
    _, first = await run_once(engine, wf.target())
    store = engine.results
    assert store is not None
    fingerprint = store.manifest(first).tasks["extract#1"].fingerprint
    assert fingerprint is not None
    store.fs.pipe_file(store.result_path(fingerprint), msgspec.msgpack.encode([7, 7, 7, 7]))
    recorded = Recorded(engine)
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        assert (await run_once(engine, wf.target()))[0] == 6
    (second,) = recorded.run_ids()
    why = (
        f"its cached result (from run {first[:12]}) is not the one its run kept "
        "(its sha256 differs)"
    )
    assert store.manifest(second).tasks["extract#1"].refused == why
    assert f"task extract ({recorded.completed(second, 'extract').task_id})" in caplog.text
    assert why in caplog.text
    assert (wf.calls["extract"], engine.stats.results_refused) == (2, 1)
    # computed again, kept again: the next run takes that
    assert (await run_once(engine, wf.target()))[0] == 6
    assert wf.calls["extract"] == 2


@pytest.mark.parametrize("forged", ["another fingerprint's entry", "bytes of its choosing"])
async def test_a_forged_cache_entry_is_refused_and_computed_again(
    store_url: str, forged: str
) -> None:
    """One who may write cache/ but not results/: an entry it forged proves no file there."""
    wf = Costly()
    engine = Engine(results=store_url)
    _, first = await run_once(engine, wf.target(4))
    _, other = await run_once(engine, wf.target(5))
    store = engine.results
    assert store is not None
    path = cache_entry_path(engine, first, "extract#1")
    entry = msgspec.json.decode(store.fs.cat_file(path))
    if forged == "bytes of its choosing":
        chosen = msgspec.msgpack.encode([7, 7, 7, 7])
        entry.update(size=len(chosen), sha256=hashlib.sha256(chosen).hexdigest())
    else:
        entry = msgspec.json.decode(store.fs.cat_file(cache_entry_path(engine, other, "extract#1")))
    store.fs.pipe_file(path, msgspec.json.encode(entry))
    assert (await run_once(engine, wf.target(4)))[0] == 6
    assert (wf.calls["extract"], engine.stats.results_refused) == (3, 1)


async def test_a_pickle_kept_as_a_cached_result_is_never_loaded(tmp_path: Path) -> None:
    """One who may write the store plants a pickle and an entry proving it: it is refused."""
    marker = tmp_path / "unpickled"

    class Armed:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    wf = Costly()
    engine = Engine(results=tmp_path / "kept")
    _, first = await run_once(engine, wf.target())
    store = engine.results
    assert store is not None
    planted = pickle.dumps(Armed(), protocol=pickle.HIGHEST_PROTOCOL)
    fingerprint = store.manifest(first).tasks["extract#1"].fingerprint
    assert fingerprint is not None
    store.fs.pipe_file(store.result_path(fingerprint), planted)
    path = cache_entry_path(engine, first, "extract#1")
    entry = msgspec.json.decode(store.fs.cat_file(path))
    entry.update(size=len(planted), sha256=hashlib.sha256(planted).hexdigest())
    store.fs.pipe_file(path, msgspec.json.encode(entry))
    assert (await run_once(engine, wf.target()))[0] == 6
    assert (wf.calls["extract"], engine.stats.results_refused) == (2, 1)
    assert not marker.exists()


def relink(entry: Path, elsewhere: Path) -> None:
    """Move ``entry`` to ``elsewhere``, leaving a link to it in its place."""
    elsewhere.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(elsewhere)


async def test_a_cache_entry_through_a_link_is_refused(tmp_path: Path) -> None:
    wf = Costly()
    engine = Engine(results=tmp_path / "kept")
    _, first = await run_once(engine, wf.target())
    relink(Path(cache_entry_path(engine, first, "extract#1")), tmp_path / "elsewhere.json")
    await run_once(engine, wf.target())
    assert (wf.calls["extract"], engine.stats.results_refused) == (2, 1)


class StuckStore(ResultStore):
    """A store whose cache entries are read only once ``released``."""

    released = threading.Event()

    def cache_entry(self, fingerprint: str) -> Any:
        self.released.wait(60)
        return super().cache_entry(fingerprint)


async def test_a_cache_that_does_not_answer_holds_the_run_no_longer_than_read_timeout() -> None:
    """The lookup runs off the loop: the loop goes on while it waits, and the task runs."""
    wf = Costly()
    store = StuckStore(memory_url(), read_timeout=0.3)
    engine = Engine(results=store)
    store.released.clear()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(tick())
    try:
        assert (await run_once(engine, wf.target()))[0] == 6
    finally:
        ticking.cancel()
        store.released.set()
    assert ticks >= 10  # the loop was free while the entry was not read
    assert wf.calls["extract"] == 1
    assert engine.stats.results_refused == 1


async def test_a_rerun_that_forces_a_task_does_not_take_it_from_the_cache() -> None:
    wf = Costly()
    engine = Engine(results=memory_url())
    _, first = await run_once(engine, wf.target())
    assert await engine.run(wf.target(), rerun_of=first, rerun="all") == 6
    assert wf.calls == {"extract": 2, "report": 2}


async def test_the_wire_says_a_cached_result_and_the_run_it_came_from() -> None:
    """COMPLETED carries cached: true and reused_from; a task that ran says neither. The
    run's snapshot counts the cached task completed, never running, and its entries of the
    cached tasks say so as their COMPLETED did."""
    broker = InMemoryBroker()
    messages: list[Envelope] = []
    wf = Costly()
    gate, reporting = asyncio.Event(), asyncio.Event()

    @task(name="report")
    async def gated_report(rows: list[int]) -> int:
        reporting.set()
        await gate.wait()
        return sum(rows)

    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(
            telemetry_filter(prefix="cascade"), lambda m: messages.append(decode_envelope(m.raw))
        )
        engine = Engine(
            InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None, results=memory_url()
        )
        recorded = Recorded(engine)
        _, first = await run_once(engine, wf.target())
        from_policy = wf.extract(7).with_cache(FileExistenceCache(__file__))
        given = asyncio.Event()
        engine.events.subscribe(
            lambda e: (
                given.set()
                if isinstance(e, TaskCompleted) and e.task_id == from_policy.task_id
                else None
            )
        )
        running = asyncio.create_task(
            engine.run([gated_report(wf.extract(4).with_cache()), from_policy])
        )
        await reporting.wait()
        await given.wait()
        second = recorded.run_ids()[-1]
        await broker.idle()
        await reader.publish(snapshot_request_topic(second), SnapshotRequest(run_id=second), qos=1)
        await eventually(
            lambda: any(isinstance(m.body, RunSnapshot) and m.run_id == second for m in messages)
        )
        gate.set()
        assert await running == [6, __file__]
        await broker.idle()
    (snapshot,) = [m.body for m in messages if isinstance(m.body, RunSnapshot)]
    assert (snapshot.completed, snapshot.running) == (2, 1)  # the cached ones never ran
    entries = {(t.task_name, t.state, t.cached, t.reused_from) for t in snapshot.tasks}
    assert entries == {
        ("extract", "COMPLETED", True, first),
        ("extract", "COMPLETED", True, msgspec.UNSET),
        ("report", "RUNNING", msgspec.UNSET, msgspec.UNSET),
    }
    completed = {
        (m.run_id, m.body.task_id): m.body
        for m in messages
        if isinstance(m.body, TaskStateEvent) and m.body.state == "COMPLETED"
    }
    said = {
        (run_id, body.task_name, body.cached, body.reused_from)
        for (run_id, _), body in completed.items()
    }
    assert said == {
        (first, "extract", msgspec.UNSET, msgspec.UNSET),
        (first, "report", msgspec.UNSET, msgspec.UNSET),
        (second, "extract", True, first),  # from the store: the run that kept it
        (second, "extract", True, msgspec.UNSET),  # from a policy: no run
        (second, "report", msgspec.UNSET, msgspec.UNSET),
    }


class Remembers:
    """A cache policy of the user's, with coroutine methods: what it was asked and told."""

    def __init__(self) -> None:
        self.kept: dict[int, Any] = {}
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def check(self, task_id: str, inputs: dict[str, Any]) -> Any:
        self.asked.append((task_id, inputs))
        return self.kept.get(inputs["n"])

    async def save(self, task_id: str, inputs: dict[str, Any], output: Any) -> None:
        self.kept[inputs["n"]] = output


async def test_a_cache_policy_is_asked_before_and_told_after() -> None:
    """check before the first attempt (its value: the task does not run), save after it ran;
    inputs by parameter name. No results store is needed."""
    wf = Costly()
    policy = Remembers()
    engine = Engine()
    recorded = Recorded(engine)
    assert await engine.run(wf.report(wf.extract(3).with_cache(policy))) == 3
    assert policy.kept == {3: [0, 1, 2]}
    assert await engine.run(wf.report(wf.extract.with_cache(policy)(n=3))) == 3
    assert wf.calls["extract"] == 1
    assert [inputs for _, inputs in policy.asked] == [{"n": 3}, {"n": 3}]
    second = recorded.run_ids()[1]
    assert [type(e) for e in recorded.of(second, "extract")] == [TaskCached]
    hit = recorded.completed(second, "extract")
    assert (hit.cached, hit.reused_from, hit.not_kept) == (True, None, None)
    assert engine.stats.results_cached == 1


async def test_a_value_from_a_policy_is_not_kept_as_computed(tmp_path: Path) -> None:
    """With results kept, a policy's value is kept neither for its task nor for what is
    computed from it: a rerun runs them again."""
    wf = Costly(policy=FileExistenceCache(tmp_path / "done"))
    (tmp_path / "done").touch()
    engine = Engine(results=tmp_path / "kept")
    recorded = Recorded(engine)

    @task(name="report")
    def size(path: str) -> int:
        return len(path)

    assert await engine.run(size(wf.extract(4).with_cache(FileExistenceCache(tmp_path / "done"))))
    (run_id,) = recorded.run_ids()
    assert wf.calls["extract"] == 0
    assert recorded.completed(run_id, "extract").not_kept == (
        "taken from its cache policy (FileExistenceCache): not computed"
    )
    assert recorded.completed(run_id, "report").not_kept == (
        "decided upstream: extract taken from its cache policy FileExistenceCache"
    )


async def test_file_existence_cache_runs_the_task_until_its_file_exists(tmp_path: Path) -> None:
    """The existing engine's FileExistenceCache: the path (or a function of the inputs)."""
    made: list[str] = []

    @task
    def render(name: str) -> str:
        path = tmp_path / f"{name}.txt"
        path.write_text("report")
        made.append(name)
        return "rendered"

    by_inputs = FileExistenceCache(lambda inputs: str(tmp_path / f"{inputs['name']}.txt"))
    engine = Engine()
    assert await engine.run(render("a").with_cache(by_inputs)) == "rendered"
    assert await engine.run(render("a").with_cache(by_inputs)) == str(tmp_path / "a.txt")
    assert await engine.run(render("b").with_cache(by_inputs)) == "rendered"
    assert made == ["a", "b"]
    assert repr(FileExistenceCache("x.txt")) == "FileExistenceCache('x.txt')"


async def test_a_policy_that_fails_to_check_lets_the_task_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def check(self, task_id: str, inputs: dict[str, Any]) -> Any:
            assert threading.current_thread() is not threading.main_thread()  # off the loop
            raise OSError("the cache is down")

        def save(self, task_id: str, inputs: dict[str, Any], output: Any) -> None:
            raise OSError("still down")

    wf = Costly(policy=Broken())
    engine = Engine()
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        assert await engine.run(wf.target()) == 6
    assert wf.calls["extract"] == 1
    assert "its cache policy's check failed: OSError: the cache is down" in caplog.text
    assert "its cache policy's save failed: OSError: still down" in caplog.text
    assert engine.stats.results_refused == 1


def test_with_cache_keeps_the_tasks_other_options_and_they_keep_it() -> None:
    wf = Costly()
    assert wf.extract.cache is None
    cached = wf.extract.with_retry(2).with_cache(expire=5).with_timeout(3)
    assert (cached.retry.max_attempts, cached.timeout) == (2, 3.0)
    assert cached.cache is not None
    assert (cached.cache.policy, cached.cache.expire) == (None, 5.0)
    assert wf.extract.cache is None  # a copy


async def test_a_cached_maps_items_are_each_cached(tmp_path: Path) -> None:
    """task.with_cache().map(...): each item takes the result an earlier run kept for it; a
    new item runs."""
    calls: list[int] = []

    @task
    def double(n: int) -> int:
        calls.append(n)
        return n * 2

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    engine = Engine(results=tmp_path)
    recorded = Recorded(engine)
    assert await engine.run(total(double.with_cache().map(n=[1, 2, 3]))) == 12
    assert await engine.run(total(double.with_cache().map(n=[1, 2, 3, 4]))) == 20
    assert sorted(calls) == [1, 2, 3, 4]  # each once (threads: in any order)
    second = recorded.run_ids()[1]
    cached = [
        e
        for e in recorded.of(second, "double")
        if isinstance(e, TaskCompleted) and "[" in e.task_id
    ]  # the items (the map itself completes too)
    assert sorted((e.task_id.rsplit("[", 1)[1], e.cached) for e in cached) == [
        ("0]", True),
        ("1]", True),
        ("2]", True),
        ("3]", False),
    ]
