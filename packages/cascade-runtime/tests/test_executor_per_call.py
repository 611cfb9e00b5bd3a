"""Where one call runs, chosen where it is called (``.with_executor(name)``), and resources a
worker process makes itself (``@resource(per_worker=True)``): issue 93's item 5, with a
process executor as the engine's default."""

from __future__ import annotations

import importlib
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.runtime import (
    Engine,
    ExecutorError,
    ProcessExecutor,
    ResourceError,
    ResourceFailed,
    TaskFailedError,
    ThreadExecutor,
    resource,
    task,
)

WORKERS = Path(__file__).parent / "workers"


@pytest.fixture(scope="module")
def tasks() -> Iterator[ModuleType]:
    """The tasks workers run, from a module they can import (its folder on sys.path, which
    spawned workers start with)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        yield importlib.import_module("cascade_worker_tasks")


@resource(name="engine_lock")
def engine_lock() -> Iterator[threading.Lock]:
    yield threading.Lock()


def _engine(processes: ProcessExecutor) -> Engine:
    """Processes by default, and threads by the name ``threads``."""
    return Engine(executor=processes, executors={"threads": ThreadExecutor()})


async def test_one_call_on_threads_beside_a_process_default_with_an_injected_resource(
    tasks: ModuleType,
) -> None:
    """With ProcessExecutor the default, a call of a task that injects a resource no pickle
    crosses runs on threads by ``.with_executor("threads")``, in the engine's process, beside
    a call that runs in a worker; the same call without it fails, its resource unsendable."""
    with ProcessExecutor(1) as processes:
        engine = _engine(processes)
        engine.register(engine_lock)
        here, there = await engine.run([tasks.held_by().with_executor("threads"), tasks.crunch(1)])
        assert here == os.getpid()
        assert there[0] != os.getpid()
        with pytest.raises(TaskFailedError) as failed:
            await engine.run(tasks.held_by())
    assert isinstance(failed.value.exception, ExecutorError)
    assert "cannot be pickled" in str(failed.value.exception)


def test_a_calls_executor_is_its_own(tasks: ModuleType) -> None:
    """``.with_executor`` changes that call alone; ``Task.with_executor`` makes a copy; a
    coroutine task refuses it, as ``@task(executor=...)``."""
    one = tasks.held_by().with_executor("threads")
    other = tasks.held_by()
    assert (one.task.executor, other.task.executor) == ("threads", None)
    assert tasks.held_by.executor is None
    assert tasks.held_by.with_executor("threads").executor == "threads"
    assert one.with_executor(None).task.executor is None

    @task
    async def on_the_loop() -> int:
        return 1

    with pytest.raises(ExecutorError, match="coroutine"):
        on_the_loop().with_executor("threads")


async def test_an_executor_the_engine_lacks_fails_the_run_before_it_starts(
    tasks: ModuleType,
) -> None:
    """A call that names an executor the engine does not have: ExecutorError, nothing run."""
    with pytest.raises(ExecutorError, match=r"'gpu'.*does not have"):
        await Engine().run(tasks.crunch(1).with_executor("gpu"))


async def test_a_per_worker_resource_is_made_in_the_worker_once_and_torn_down_at_its_exit(
    tasks: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resource no pickle crosses, ``per_worker=True``: each task in a worker process gets
    the value that process made (once, at its first such task), and its teardown runs when
    the process exits; a call kept on threads gets the run's, made in the engine's process."""
    monkeypatch.setenv(tasks.TEARDOWNS, str(tmp_path))  # before the workers start
    with ProcessExecutor(1) as processes:
        engine = _engine(processes)
        engine.register(tasks.worker_lock)
        first, second, kept_here = await engine.run(
            [tasks.locked(), tasks.locked(), tasks.locked().with_executor("threads")]
        )
        worker = first["pid"]
        assert worker != os.getpid()
        assert first == second == {"pid": worker, "made_in": worker, "made": 1}
        assert kept_here["pid"] == kept_here["made_in"] == os.getpid()
        assert not (tmp_path / str(worker)).exists()  # the worker lives on
    assert (tmp_path / str(worker)).read_text() == "torn down"


async def test_sql_on_a_per_worker_engine_runs_in_processes(
    tasks: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cs.sql`` on an injected SQLAlchemy engine, with ProcessExecutor the default: the
    engine a per-worker resource, each worker's own."""
    pytest.importorskip("sqlalchemy")
    monkeypatch.setenv("CASCADE_TEST_WAREHOUSE", str(tmp_path / "warehouse.db"))
    with ProcessExecutor(1) as processes:
        engine = Engine(executor=processes)
        engine.register(tasks.warehouse)
        rows = await engine.run(cs.sql("select 41 + 1 as answer", "warehouse"))
    assert rows == [{"answer": 42}]


async def test_a_per_worker_setup_that_raises_fails_the_task_with_resource_failed(
    tasks: ModuleType,
) -> None:
    """A per-worker resource whose setup raises in the worker: the task fails with
    ResourceFailed naming it and what it raised, as a run's resource's setup does."""
    with ProcessExecutor(1) as processes:
        engine = Engine(executor=processes)
        engine.register(tasks.broken_vault)
        with pytest.raises(TaskFailedError) as failed:
            await engine.run(tasks.opens_vault())
    error = failed.value.exception
    assert isinstance(error, ResourceFailed)
    assert error.resource == "broken_vault"
    assert "ConnectionRefusedError: vault is down" in str(error)


def test_what_a_worker_cannot_make_by_itself_is_refused() -> None:
    """``per_worker=True`` takes a sync generator function a worker can import, injecting no
    other resource: else ResourceError, when the resource is made."""

    async def on_a_loop() -> Any:
        yield 1

    def local() -> Any:
        yield 1

    with pytest.raises(ResourceError, match="sync generator"):
        resource(on_a_loop, per_worker=True)  # type: ignore[call-overload]
    with pytest.raises(ResourceError, match="import"):
        resource(per_worker=True)(local)
    with pytest.raises(ResourceError, match="injects engine_lock"):
        resource(per_worker=True)(_injecting)


def _injecting(lock: Any = cs.inject("engine_lock")) -> Any:
    yield lock


def test_the_resource_a_worker_gets_crosses_as_its_name() -> None:
    """What is sent for a per-worker resource is its function's name, never its value; loaded,
    it is the value made in the process that loads it, once."""
    sent = resource(per_worker=True)(_top_level)
    made = sent.in_worker()
    assert (made.module, made.qualname, made.name) == (__name__, "_top_level", "_top_level")
    crossed = pickle.dumps(made)
    assert b"made_here" in crossed
    assert pickle.loads(crossed) is pickle.loads(crossed)  # one value in this process
    assert pickle.loads(crossed) == [os.getpid()]


def _top_level() -> Any:
    yield [os.getpid()]
