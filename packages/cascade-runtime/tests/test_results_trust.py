"""What a rerun and a cache believe: a value a person gave never passes for a computed one, and
a kept result proves itself (its digest and size, a regular file, read within bounds)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cascade.runtime import (
    Engine,
    Event,
    RerunError,
    ResultMissing,
    ResultStore,
    RunStarted,
    TaskCompleted,
    task,
)
from cascade.runtime.testing import eventually


def memory_url() -> str:
    """A store of its own per test: fsspec's memory file system is one per process."""
    return f"memory://trust-{uuid.uuid4().hex}"


class Report:
    """``report(load(n))``: ``load`` fails while ``broken`` and is held for a decision;
    ``cached``: ``report`` taken from the cache when it has one (``with_cache``)."""

    def __init__(self, *, cached: bool = False) -> None:
        self.cached = cached
        self.broken = False
        self.failed = asyncio.Event()
        self.calls = {"load": 0, "report": 0}

        @task(name="load", on_failure="hold")
        async def load(n: int) -> list[int]:
            self.calls["load"] += 1
            if self.broken:
                self.failed.set()
                raise ConnectionError("the API is down")
            return list(range(n))

        @task(name="report")
        async def report(rows: list[int]) -> int:
            self.calls["report"] += 1
            return sum(rows)

        self.load, self.report = load, report

    def target(self) -> Any:
        made = self.report(self.load(4))
        return made.with_cache() if self.cached else made


def run_ids(engine: Engine) -> list[str]:
    started: list[str] = []
    engine.events.subscribe(
        lambda e: started.append(e.run_id) if isinstance(e, RunStarted) else None
    )
    return started


async def completed_by_decision(engine: Engine, wf: Report, started: list[str]) -> str:
    """Run ``wf`` with ``load`` failing, complete it with a value given by ops-1."""
    wf.broken = True
    running = asyncio.create_task(engine.run(wf.target()))
    await wf.failed.wait()
    run_id = started[-1]
    await eventually(lambda: engine.decide(run_id, "load", "complete", result=[999000],
                                           issued_by="ops-1") is not None)  # fmt: skip
    assert await running == 999000
    wf.broken = False
    return run_id


async def test_a_value_decided_upstream_is_never_served_from_the_cache() -> None:
    """A run whose load is completed by a decision computes report from the given value,
    though an honest run's report of the same fingerprint is kept; it keeps neither, and the
    next honest run still takes the honest one."""
    wf = Report(cached=True)
    engine = Engine(results=memory_url())
    started = run_ids(engine)
    reports: list[TaskCompleted] = []

    def report_completed(event: Event) -> None:
        if isinstance(event, TaskCompleted) and event.task_name == "report":
            reports.append(event)

    engine.events.subscribe(report_completed)
    assert await engine.run(wf.target()) == 6
    honest = started[-1]
    decided = await completed_by_decision(engine, wf, started)
    assert wf.calls["report"] == 2
    report = reports[-1]
    assert report.run_id == decided
    assert (report.cached, report.not_kept) == (False, "decided upstream: load completed by ops-1")
    store = engine.results
    assert store is not None
    row = store.manifest(decided).tasks["report#1"]
    assert (row.refused, row.from_run) == ("decided upstream: load completed by ops-1", None)
    assert await engine.run(wf.target()) == 6
    assert wf.calls["report"] == 2
    assert reports[-1].reused_from == honest


async def test_a_decided_value_and_what_was_computed_from_it_are_never_reused() -> None:
    wf = Report()
    engine = Engine(results=memory_url())
    started = run_ids(engine)
    assert await engine.run(wf.target()) == 6
    honest = started[-1]
    decided = await completed_by_decision(engine, wf, started)
    store = engine.results
    assert store is not None
    manifest = store.manifest(decided)
    assert manifest.tasks["load#1"].from_run is None
    report = manifest.tasks["report#1"]
    assert report.from_run is None
    assert report.not_kept == "decided upstream: load completed by ops-1"
    # the honest result kept under report's fingerprint was not overwritten
    assert await engine.run(wf.target(), rerun_of=honest) == 6
    plan = await engine.plan(wf.target(), rerun_of=decided)
    assert [(s.task_name, s.action, s.why) for s in plan] == [
        ("load", "run", "its result was not kept: completed by a decision (ops-1): "
                        "its result was given, not computed"),
        ("report", "run", "its result was not kept: decided upstream: load completed by ops-1"),
    ]  # fmt: skip
    calls = dict(wf.calls)
    assert await engine.run(wf.target(), rerun_of=decided) == 6
    assert wf.calls == {"load": calls["load"] + 1, "report": calls["report"] + 1}


class Sums:
    """``report(extract(n))``: the rows below ``n``, and their sum."""

    def __init__(self) -> None:
        self.calls = {"extract": 0, "report": 0}

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
        return self.report(self.extract(n))


@pytest.fixture(params=["directory", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A local directory, and fsspec's memory file system: the same rules for both."""
    return str(tmp_path / "kept") if request.param == "directory" else memory_url()


async def kept_run(engine: Engine, wf: Sums, n: int = 4) -> str:
    started = run_ids(engine)
    await engine.run(wf.target(n))
    return started[-1]


def kept_file(engine: Engine, run_id: str, key: str) -> str:
    store = engine.results
    assert store is not None
    fingerprint = store.manifest(run_id).tasks[key].fingerprint
    assert fingerprint is not None
    return store.result_path(fingerprint)


async def test_a_result_rewritten_in_place_is_not_believed(store_url: str) -> None:
    wf = Sums()
    engine = Engine(results=store_url)
    first = await kept_run(engine, wf)
    store = engine.results
    assert store is not None
    report = kept_file(engine, first, "report#1")
    store.fs.pipe_file(report, msgspec.msgpack.encode(3000))  # 3 bytes where 1 was kept
    plan = await engine.plan(wf.target(), rerun_of=first)
    assert [(s.task_name, s.action, s.why) for s in plan] == [
        ("extract", "reuse", "unchanged"),
        ("report", "force",
         f"its stored result (from run {first[:12]}) is 3 bytes, not the 1 byte its run kept"),
    ]  # fmt: skip
    assert engine.stats.results_refused == 0  # a dry run ran nothing
    started = run_ids(engine)
    assert await engine.run(wf.target(), rerun_of=first) == 6
    assert engine.stats.results_refused == 1
    (again,) = started
    assert store.manifest(again).tasks["report#1"].refused == plan[1].why
    assert store.manifest(again).tasks["extract#1"].refused is None
    # the same size, another value: its digest tells
    store.fs.pipe_file(report, msgspec.msgpack.encode(7))
    (_, step) = await engine.plan(wf.target(), rerun_of=first)
    assert (step.action, step.why) == (
        "force",
        f"its stored result (from run {first[:12]}) is not the one its run kept "
        "(its sha256 differs)",
    )
    assert await engine.run(wf.target(), rerun_of=first) == 6


async def test_another_tasks_file_copied_over_a_result_is_not_believed(store_url: str) -> None:
    wf = Sums()
    engine = Engine(results=store_url)
    four = await kept_run(engine, wf, 4)
    nine = await kept_run(engine, wf, 9)
    store = engine.results
    assert store is not None
    nine_sum = store.fs.cat_file(kept_file(engine, nine, "report#1"))
    store.fs.pipe_file(kept_file(engine, four, "report#1"), nine_sum)
    calls = dict(wf.calls)
    assert await engine.run(wf.target(4), rerun_of=four) == 6
    assert wf.calls["report"] == calls["report"] + 1


async def test_a_result_over_its_kept_size_is_refused_before_it_is_read(tmp_path: Path) -> None:
    wf = Sums()
    engine = Engine(results=ResultStore(tmp_path / "kept", max_bytes=1 << 20))
    first = await kept_run(engine, wf)
    path = Path(kept_file(engine, first, "report#1"))
    os.truncate(path, 27 << 20)  # 27 MiB, sparse: nothing of it is ever read
    (_, step) = await engine.plan(wf.target(), rerun_of=first)
    assert step.why == (
        f"its stored result (from run {first[:12]}) is 28,311,552 bytes, "
        "not the 1 byte its run kept"
    )
    store = engine.results
    assert store is not None
    fingerprint = path.name
    with pytest.raises(ResultMissing, match=r"is over 1,048,576 bytes"):
        store.read(fingerprint)  # no manifest's size: max_bytes bounds it


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs or symbolic links here")
@pytest.mark.parametrize("what", ["link to a copy", "link to a FIFO", "FIFO", "linked folder"])
async def test_a_result_that_is_not_a_regular_file_in_the_store_is_refused_at_once(
    tmp_path: Path, what: str
) -> None:
    wf = Sums()
    engine = Engine(results=tmp_path / "kept")
    first = await kept_run(engine, wf)
    said = tamper(Path(kept_file(engine, first, "report#1")), what, tmp_path / "outside")
    calls = dict(wf.calls)
    plan = await engine.plan(wf.target(), rerun_of=first)
    assert plan[-1].why == f"its stored result (from run {first[:12]}) {said}"
    assert await engine.run(wf.target(), rerun_of=first) == 6
    assert wf.calls["report"] == calls["report"] + 1
    assert engine.stats.results_refused == 1


def tamper(path: Path, what: str, outside: Path) -> str:
    """Put ``what`` where the kept file ``path`` is; what a rerun says of it."""
    outside.mkdir()
    if what == "link to a copy":  # the very bytes kept, but outside the store
        (outside / path.name).write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(outside / path.name)
        return "is reached through a symbolic link"
    if what == "link to a FIFO":  # opening it would wait for a writer forever
        os.mkfifo(outside / "fifo")
        path.unlink()
        path.symlink_to(outside / "fifo")
        return "is reached through a symbolic link"
    if what == "FIFO":
        make_fifo(path)
        return "is not a regular file"
    folder = path.parent
    folder.rename(outside / folder.name)
    folder.symlink_to(outside / folder.name, target_is_directory=True)
    return "is reached through a symbolic link"


def make_fifo(path: Path) -> None:
    """``path``, a FIFO in place of the file there."""
    path.unlink()
    os.mkfifo(path)


class StuckStore(ResultStore):
    """A store whose result reads never answer until released (a hung network file system)."""

    released = threading.Event()

    def read_bytes(self, fingerprint: str, *, size: int | None = None,
                   sha256: str | None = None) -> bytes:  # fmt: skip
        self.released.wait(60)
        return super().read_bytes(fingerprint, size=size, sha256=sha256)


async def test_results_not_read_within_the_stores_bound_are_computed_again() -> None:
    wf = Sums()
    store = StuckStore(memory_url(), read_timeout=0.2)
    engine = Engine(results=store)
    store.released.set()
    first = await kept_run(engine, wf)
    store.released.clear()
    try:
        assert await engine.run(wf.target(), rerun_of=first) == 6
        assert wf.calls == {"extract": 2, "report": 2}
        assert engine.stats.results_refused == 2
        plan = await engine.plan(wf.target(), rerun_of=first)
        assert {s.why for s in plan} == {
            f"its stored result (from run {first[:12]}) was not read within 0.2 s"
        }
    finally:
        store.released.set()


async def test_a_kept_result_without_a_digest_is_not_believed(store_url: str) -> None:
    """A manifest that names no digest (written before they were kept, or edited)."""
    wf = Sums()
    engine = Engine(results=store_url)
    first = await kept_run(engine, wf)
    store = engine.results
    assert store is not None
    manifest = store.manifest(first)
    for kept in manifest.tasks.values():
        kept.sha256 = None
    store.fs.pipe_file(store.manifest_path(first), msgspec.json.encode(manifest))
    plan = await engine.plan(wf.target(), rerun_of=first)
    assert {(s.action, s.why) for s in plan} == {
        ("force", f"its stored result (from run {first[:12]}) has no digest to check")
    }


async def test_a_rerun_keeps_the_proof_of_what_it_reused(store_url: str) -> None:
    wf = Sums()
    engine = Engine(results=store_url)
    started = run_ids(engine)
    first = await kept_run(engine, wf)
    await engine.run(wf.target(), rerun_of=first)
    store = engine.results
    assert store is not None
    before, after = store.manifest(first).tasks, store.manifest(started[-1]).tasks
    for key in ("extract#1", "report#1"):
        assert after[key].from_run == first
        assert (after[key].size, after[key].sha256) == (before[key].size, before[key].sha256)
        assert before[key].sha256 is not None
    assert await engine.run(wf.target(), rerun_of=started[-1]) == 6
    assert wf.calls == {"extract": 1, "report": 1}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
async def test_a_manifest_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    wf = Sums()
    engine = Engine(results=tmp_path / "kept")
    first = await kept_run(engine, wf)
    store = engine.results
    assert store is not None
    make_fifo(Path(store.manifest_path(first)))
    with pytest.raises(RerunError, match=f"the manifest of run {first} is not a regular file"):
        await engine.run(wf.target(), rerun_of=first)


def test_journals_that_name_each_other_as_the_run_they_rerun_make_a_manifest_still(
    tmp_path: Path,
) -> None:
    """Whoever may write the store writes two journals, each the rerun (a carry-on) of the
    other: an unfinished manifest is made from them, its line read so far and no further, not
    a recursion without end."""
    first, second = "a" * 32, "b" * 32
    for run_id, rerun_of in ((first, second), (second, first)):
        head = tmp_path / "runs" / run_id / "began.json"
        head.parent.mkdir(parents=True)
        origin = {"carried_on_from": rerun_of}
        began = {"run_id": run_id, "status": "Running", "tasks": {}, "rerun_of": rerun_of}
        head.write_bytes(msgspec.json.encode({**began, "origin": origin}))
    manifest = ResultStore(str(tmp_path)).manifest(first)
    assert (manifest.status, manifest.rerun_of, manifest.tasks) == ("Unfinished", second, {})
