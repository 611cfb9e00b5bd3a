"""DaskExecutor against a real Dask cluster: a scheduler and two workers started as processes on
loopback ports, the engine still the driver (retries of a worker lost, logs, current_task())."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces.logs import decode_log_batch
from cascade.runtime import (
    DaskExecutor,
    Engine,
    ExecutorError,
    LogForwarding,
    RunCancelledError,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskContext,
    TaskFailedError,
    TaskRetrying,
    ThreadExecutor,
    WorkerLost,
)
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import DaskCluster

distributed = pytest.importorskip(
    "distributed", reason="distributed is not installed (pip install 'cascade-runtime[dask]')"
)

WORKERS = Path(__file__).parent / "workers"


@pytest.fixture(scope="module")
def tasks() -> Iterator[ModuleType]:
    """The tasks the workers run, from a module they import (its folder on their PYTHONPATH)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        yield importlib.import_module("cascade_worker_tasks")


@pytest.fixture(scope="module")
def dask_scheduler(tasks: ModuleType) -> Iterator[str]:
    """A scheduler and two workers for the module's tests (``w0`` offers one ``gpu``); its
    address."""
    cluster = DaskCluster([{"gpu": 1}, {}], paths=[str(WORKERS)])
    try:
        yield cluster.address
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def on_dask(dask_scheduler: str) -> Iterator[DaskExecutor]:
    with DaskExecutor(dask_scheduler) as executor:
        yield executor


async def test_a_maps_items_run_on_dask_workers(tasks: ModuleType, on_dask: DaskExecutor) -> None:
    """Every item ran in a Dask worker process, none in the engine's; the results in order."""
    results = await Engine(executor=on_dask).run(tasks.crunch.map(x=[0, 1, 2, 3]))
    assert [answer for _, answer in results] == [
        sum(i * i for i in range(50_000 + x)) for x in range(4)
    ]
    assert os.getpid() not in {worker for worker, _ in results}


async def test_current_task_and_log_lines_come_from_the_worker(
    tasks: ModuleType, on_dask: DaskExecutor
) -> None:
    """current_task() on the worker is the attempt's; its lines and prints reach the run."""
    context = await Engine(executor=on_dask).run(tasks.whoami())
    assert isinstance(context, TaskContext)
    assert (context.task_name, context.attempt) == ("whoami", 1)
    broker = InMemoryBroker()
    tasks.log.setLevel("INFO")
    try:
        engine = Engine(
            InMemoryConnector(broker), executor=on_dask, logs=LogForwarding(capture_print=True)
        )
        await engine.run(tasks.noisy.map(n=[1, 2]))
    finally:
        tasks.log.setLevel("NOTSET")
    lines = sorted(
        (line.task_id.rsplit("[", 1)[1], line.attempt, line.message.split(" in pid")[0])
        for m in broker.history
        if "/logs/" in m.topic
        for line in decode_log_batch(m.raw).lines
    )
    assert lines == [
        ("0]", 1, "line 1"),
        ("0]", 1, "printed 1"),
        ("1]", 1, "line 2"),
        ("1]", 1, "printed 2"),
    ]


async def test_an_exception_comes_back_with_its_worker_traceback(
    tasks: ModuleType, on_dask: DaskExecutor
) -> None:
    """What the task raised on the worker is what fails it, the worker's traceback its cause."""
    with pytest.raises(TaskFailedError) as failed:
        await Engine(executor=on_dask).run(tasks.raises("bad row"))
    exc = failed.value.exception
    assert type(exc) is ValueError
    assert "raise ValueError(text)" in str(exc.__cause__)


async def test_a_cancelled_run_cancels_its_dask_futures(
    tasks: ModuleType, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """A cancel ends the run at once, its Dask futures cancelled (a worker that runs one runs it
    on to its end)."""
    engine = Engine(executor=on_dask)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(
        engine.run(tasks.waits.map(folder=[str(tmp_path)] * 4, n=[0, 1, 2, 3]))
    )
    try:
        await eventually(lambda: len(list(tmp_path.glob("started-*"))) == 2, timeout=30)
        run_id = next(e.run_id for e in recorder.events if isinstance(e, RunStarted))
        report = engine.cancel(run_id, issued_by="test")
        assert report is not None
        assert len(report.abandoned) == 4  # a Dask future does not say whether it started
        with pytest.raises(RunCancelledError):
            await run
        cancelled = [e for e in recorder.events if isinstance(e, TaskCancelled)]
        assert len([e for e in cancelled if "[" in e.task_id]) == 4
        assert all("its Dask future is cancelled" in e.error for e in cancelled if "[" in e.task_id)
    finally:
        (tmp_path / "release").write_text("")  # the two started end: the workers are free


async def test_a_scheduler_that_goes_away_fails_the_attempts_it_held(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """The scheduler killed mid-run: the attempts it held fail WorkerLost saying so, at once."""
    cluster = DaskCluster(1, paths=[str(WORKERS)], nanny=False)  # no worker is restarted
    try:
        with DaskExecutor(cluster.address) as executor:
            engine = Engine(executor=executor)
            run = asyncio.create_task(engine.run(tasks.waits(str(tmp_path), 0)))
            await eventually(lambda: (tmp_path / "started-0").exists(), timeout=30)
            cluster.scheduler.kill()
            with pytest.raises(TaskFailedError) as failed:
                await asyncio.wait_for(run, 30)
    finally:
        (tmp_path / "release").write_text("")
        cluster.stop()
    assert isinstance(failed.value.exception, WorkerLost)
    assert f"the Dask scheduler {cluster.address} dropped the attempt" in str(
        failed.value.exception
    )


async def test_constraints_go_to_a_worker_that_offers_them(
    tasks: ModuleType, on_dask: DaskExecutor
) -> None:
    """with_constraints(gpu=1) runs each item on the one worker started with gpu=1; without
    it, the items go to both."""
    engine = Engine(executor=on_dask, system_resources={"gpu": 2})
    names = await engine.run(tasks.worker_name.map(n=range(6)).with_constraints(gpu=1))
    assert names == ["w0"] * 6
    everywhere = await asyncio.wait_for(
        engine.run(tasks.crunch.map(x=range(8)).with_constraints()), 60
    )
    assert len({pid for pid, _ in everywhere}) == 2


async def test_more_than_any_worker_offers_fails_the_attempt_saying_what_they_offer(
    tasks: ModuleType, on_dask: DaskExecutor
) -> None:
    """gpu=2 where the workers offer gpu=1 and none: an ExecutorError saying so, at once
    (Dask alone would hold it unrunnable for good); each retry looks again."""
    engine = Engine(executor=on_dask, system_resources={"gpu": 2})
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with pytest.raises(TaskFailedError) as failed:
        await asyncio.wait_for(
            engine.run(tasks.worker_name.with_retry(2)(0).with_constraints(gpu=2)), 30
        )
    exc = failed.value.exception
    assert isinstance(exc, ExecutorError)
    assert "asks its Dask worker for gpu=2, which no worker of the cluster" in str(exc)
    assert ": gpu=1;" in str(exc) or ": gpu=1)" in str(exc)
    assert ": no resources" in str(exc)
    assert len([e for e in recorder.events if isinstance(e, TaskRetrying)]) == 1


async def test_an_attempts_span_says_the_worker_it_ran_on(
    tasks: ModuleType, on_dask: DaskExecutor
) -> None:
    """The task's span carries cascade.task.worker: the address of the worker that ran it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = Engine(executor=on_dask, tracer_provider=provider, system_resources={"gpu": 1})
    assert await engine.run(tasks.worker_name(0).with_constraints(gpu=1)) == "w0"
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "worker_name"]
    worker = dict(span.attributes or {})["cascade.task.worker"]
    with distributed.Client(on_dask.address, set_as_default=False) as client:
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    assert names[worker] == "w0"


async def test_a_per_worker_resource_is_made_on_the_dask_worker_beside_a_call_on_threads(
    tasks: ModuleType, on_dask: DaskExecutor
) -> None:
    """With Dask the default: a task injecting a per-worker resource (a lock, which no pickle
    crosses) gets the one its Dask worker's process made; the call kept on threads
    (``.with_executor("threads")``) gets the run's, made in the engine's process."""
    engine = Engine(executor=on_dask, executors={"threads": ThreadExecutor()})
    engine.register(tasks.worker_lock)
    there, here = await engine.run([tasks.locked(), tasks.locked().with_executor("threads")])
    assert there["pid"] == there["made_in"] != os.getpid()
    assert here["pid"] == here["made_in"] == os.getpid()


# Last of the module's tests on its cluster: the worker it kills is started again by its nanny,
# which a test after it needing both workers (or w0's gpu) would wait for (5-15 s).
async def test_a_killed_worker_fails_its_attempt_worker_lost_and_the_retry_succeeds(
    tasks: ModuleType, on_dask: DaskExecutor, tmp_path: Path
) -> None:
    """SIGKILL of the worker running the first attempt: WorkerLost with its address, counted;
    the retry runs on a worker alive and completes."""
    engine = Engine(executor=on_dask)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    worker = await asyncio.wait_for(
        engine.run(tasks.dies_once.with_retry(2)(str(tmp_path / "died"))), 60
    )
    assert worker != os.getpid()
    (retrying,) = [e for e in recorder.events if isinstance(e, TaskRetrying)]
    assert isinstance(retrying.exception, WorkerLost)
    assert retrying.error.startswith("WorkerLost: worker lost (tcp://127.0.0.1:")
    assert [e.attempt for e in recorder.events if isinstance(e, TaskCompleted)] == [2]
