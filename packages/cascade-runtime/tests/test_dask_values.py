"""Results on a real Dask cluster (a scheduler and two workers started as processes on loopback):
large ones go from worker to worker, not through the engine; what the engine needs comes back
to it; kept results are written by the worker that ran the task; a result lost with its worker
is said, never computed again unseen."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cascade.runtime import (
    DaskExecutor,
    Engine,
    ResultStore,
    RunStarted,
    TaskCompleted,
    TaskFailedError,
    TaskRetrying,
    ThreadExecutor,
    WorkerLost,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import DaskCluster

distributed = pytest.importorskip(
    "distributed", reason="distributed is not installed (pip install 'cascade-runtime[dask]')"
)

WORKERS = Path(__file__).parent / "workers"
MB = 1_000_000
BOTH = {"here": 1, "there": 1}  # w0 offers here, w1 there: what pins a task to one of them


@pytest.fixture(scope="module")
def tasks() -> Iterator[ModuleType]:
    """The tasks the workers run, from a module they import (its folder on their PYTHONPATH)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        yield importlib.import_module("cascade_worker_tasks")


@pytest.fixture(scope="module")
def cluster(tasks: ModuleType) -> Iterator[DaskCluster]:
    """A scheduler and two workers: ``w0`` offers ``here``, ``w1`` offers ``there``."""
    started = DaskCluster([{"here": 1}, {"there": 1}], paths=[str(WORKERS)])
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def on_dask(cluster: DaskCluster) -> Iterator[DaskExecutor]:
    with DaskExecutor(cluster.address) as executor:
        yield executor


@task(executor="local")
def local_size(data: bytes) -> int:
    """Runs in the engine's threads."""
    return len(data)


def _read_bytes() -> int:
    """What this process has read from files and sockets so far (Linux's ``rchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _transfers(dask_worker: Any) -> tuple[str, int, int]:
    """On a worker: its name, the bytes it served (to workers or clients), the fetches it made
    from other workers."""
    return (
        str(dask_worker.name),
        int(dask_worker.transfer_outgoing_bytes_total),
        int(dask_worker.state.transfer_incoming_count_total),
    )


def _by_name(client: Any) -> dict[str, tuple[int, int]]:
    return {name: (served, fetched) for name, served, fetched in client.run(_transfers).values()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/io")
async def test_a_large_result_goes_from_worker_to_worker_not_through_the_engine(
    tasks: ModuleType, cluster: DaskCluster, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """50 MB made on w0 and taken on w1: w1 fetched it from w0, w0 served it once, and the
    engine's process read a fraction of it."""
    made = tasks.big(50, str(tmp_path)).with_constraints(here=1)
    target = tasks.size_of(made).with_constraints(there=1)
    engine = Engine(executor=on_dask, system_resources=BOTH)
    with cluster.client() as client:
        before = _by_name(client)
        read = _read_bytes()
        assert await asyncio.wait_for(engine.run(target), 120) == 50 * MB // 256 * 256
        read = _read_bytes() - read
        after = _by_name(client)
    served = after["w0"][0] - before["w0"][0]
    fetched = after["w1"][1] - before["w1"][1]
    assert fetched >= 1  # w1 took it from w0
    assert 50 * MB <= served < 75 * MB  # once: to w1, not to the engine as well
    assert read < 5 * MB, f"the engine's process read {read:,} bytes"


async def test_a_local_task_after_a_dask_task_gets_the_value(
    tasks: ModuleType, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """A large result that a task in the engine's threads takes (and one on Dask too) comes
    back to the engine; the run's own result is a value, never a handle."""
    engine = Engine(executor=on_dask, executors={"local": ThreadExecutor()})
    made = tasks.big(1, str(tmp_path))
    sizes = await asyncio.wait_for(engine.run([local_size(made), tasks.size_of(made)]), 60)
    assert sizes == [MB // 256 * 256] * 2
    value = await asyncio.wait_for(engine.run(tasks.big(1, str(tmp_path))), 60)
    assert value == bytes(range(256)) * (MB // 256)


async def test_a_kept_result_is_written_by_its_worker_and_a_rerun_on_the_engine_reuses_it(
    tasks: ModuleType, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """Engine(results=<dir>): the worker that ran the task writes its result there, the
    manifest names it and its sha256; an engine without Dask reruns from it."""
    store = tmp_path / "store"
    folder = tmp_path / "runs"
    folder.mkdir()
    engine = Engine(executor=on_dask, results=str(store))
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    made = tasks.big(1, str(folder))
    assert await asyncio.wait_for(engine.run(tasks.size_of(made)), 60) == MB // 256 * 256
    run_id = next(e.run_id for e in recorder.events if isinstance(e, RunStarted))
    manifest = json.loads((store / "runs" / f"{run_id}.json").read_text())
    row = manifest["tasks"]["big#1"]
    assert row["written_by"].startswith("tcp://127.0.0.1:")
    assert row["size"] > MB // 2
    kept = ResultStore(store).read(row["fingerprint"], size=row["size"], sha256=row["sha256"])
    assert kept == bytes(range(256)) * (MB // 256)
    assert all(e.not_kept is None for e in recorder.events if isinstance(e, TaskCompleted))

    rerun = Engine(results=str(store))  # threads only: the worker's file, read by the engine
    again = tasks.size_of(tasks.big(1, str(folder)))
    assert await rerun.run(again, rerun_of=run_id, rerun="from", from_task="size_of") == (
        MB // 256 * 256
    )
    assert len((folder / "big-runs").read_text().splitlines()) == 1  # reused, not run


async def test_a_store_in_the_engines_memory_is_kept_by_the_engine(
    tasks: ModuleType, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """memory:// is the engine's own: a result is kept there by the engine, from its value."""
    store = ResultStore(f"memory://dask-values-{os.getpid()}")
    engine = Engine(executor=on_dask, results=store)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    assert await asyncio.wait_for(engine.run(tasks.size_of(tasks.big(0.1, str(tmp_path)))), 60)
    run_id = next(e.run_id for e in recorder.events if isinstance(e, RunStarted))
    row = store.manifest(run_id).tasks["big#1"]
    assert row.from_run == run_id
    assert row.written_by is None


async def test_a_result_lost_with_its_worker_fails_the_task_taking_it_and_is_not_run_again(
    tasks: ModuleType, cluster: DaskCluster, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """The worker holding a large result is killed before the task that takes it starts: that
    task fails WorkerLost saying whose result was lost where, not retried; the task that made
    it ran once, and Dask holds nothing to run it again."""
    made = tasks.big(5, str(tmp_path)).with_constraints(here=1)
    gate = tasks.waits(str(tmp_path), 0).with_constraints(there=1)
    taker = tasks.size_of.with_retry(3)(made, gate).with_constraints(there=1)
    engine = Engine(executor=on_dask, system_resources=BOTH)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(taker))
    try:
        await eventually(
            lambda: any(
                isinstance(e, TaskCompleted) and e.task_name == "big" for e in recorder.events
            ),
            timeout=60,
        )
        await eventually(lambda: (tmp_path / "started-0").exists(), timeout=60)
        with cluster.client() as client:
            os.kill(_pid_of(client, "w0"), signal.SIGKILL)  # w0 holds big's result
            await eventually(lambda: len(client.scheduler_info()["workers"]) < 2, timeout=30)
            (tmp_path / "release").write_text("")
            with pytest.raises(TaskFailedError) as failed:
                await asyncio.wait_for(run, 60)
            keys = client.run_on_scheduler(_cascade_keys)
    finally:
        (tmp_path / "release").write_text("")
    exc = failed.value.exception
    assert isinstance(exc, WorkerLost)
    assert failed.value.task_name == "size_of"
    assert "the result of task big-" in str(exc)
    assert "was lost with the Dask worker that held it" in str(exc)
    assert not [e for e in recorder.events if isinstance(e, TaskRetrying)]
    assert len((tmp_path / "big-runs").read_text().splitlines()) == 1
    assert not [key for key in keys if "-big-" in key]  # nothing left to run it again


def _pid_of(client: Any, name: str) -> int:
    workers = client.scheduler_info()["workers"]
    (address,) = [a for a, w in workers.items() if w["name"] == name]
    return int(client.run(os.getpid, workers=[address])[address])


def _cascade_keys(dask_scheduler: Any) -> list[str]:
    return [str(key) for key in dask_scheduler.tasks if str(key).startswith("cascade-")]
