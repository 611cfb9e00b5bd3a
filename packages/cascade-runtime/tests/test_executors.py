"""Executors: plain-function tasks in threads (the default) or in worker processes, the run
still driven by its engine (retries, cancels, logs, current_task())."""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces.logs import decode_log_batch
from cascade.runtime import (
    Engine,
    ExecutorError,
    LogForwarding,
    ProcessExecutor,
    RunCancelledError,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskContext,
    TaskEvent,
    TaskFailedError,
    TaskHeld,
    TaskQueued,
    TaskRetrying,
    TaskRunning,
    ThreadExecutor,
    WorkerLost,
    gate,
    resource,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually

WORKERS = Path(__file__).parent / "workers"


@pytest.fixture(scope="module")
def tasks() -> Iterator[ModuleType]:
    """The tasks workers run, from a module they can import (its folder on sys.path, which
    spawned workers start with)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        yield importlib.import_module("cascade_worker_tasks")


@pytest.fixture(scope="module")
def processes(tasks: ModuleType) -> Iterator[ProcessExecutor]:
    """Two worker processes, shared by the tests that do not break or block them."""
    with ProcessExecutor(2) as executor:
        yield executor


@task
def pid() -> int:
    return os.getpid()


async def test_a_map_runs_its_items_in_worker_processes(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """A CPU-bound map over 4 items: each item ran in a worker, none in the engine's process."""
    results = await Engine(executor=processes).run(tasks.crunch.map(x=[0, 1, 2, 3]))
    assert [answer for _, answer in results] == [
        sum(i * i for i in range(50_000 + x)) for x in range(4)
    ]
    pids = {worker for worker, _ in results}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


async def test_current_task_in_a_worker_is_the_attempts(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """current_task() in the worker names the run, the task, its attempt and its key."""
    engine = Engine(executor=processes)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    context = await engine.run(tasks.whoami())
    run_id = next(e.run_id for e in recorder.events if isinstance(e, RunStarted))
    assert isinstance(context, TaskContext)
    assert (context.run_id, context.task_name, context.attempt) == (run_id, "whoami", 1)
    assert context.task_id.startswith("whoami-")
    assert context.idempotency_key == f"{run_id}:whoami#1"


async def test_a_named_executor_takes_only_the_tasks_that_name_it(tasks: ModuleType) -> None:
    """@task(executor="cpu") runs there; the other plain functions stay in the run's threads."""
    cpu = ProcessExecutor(1)
    engine = Engine(executors={"cpu": cpu})
    try:
        elsewhere, here = await engine.run(
            [task(executor="cpu")(tasks.crunch.fn)(1), pid()]  # a task of the same function
        )
    finally:
        cpu.shutdown()
    assert here == os.getpid()
    assert elsewhere[0] != os.getpid()


async def test_an_unknown_executor_name_fails_the_run_before_it_starts() -> None:
    """A task that names an executor the engine does not have: ExecutorError, nothing ran."""
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with pytest.raises(ExecutorError, match=r"task 'pid' .* runs on executor 'gpu'.*it has: none"):
        await engine.run(task(executor="gpu")(pid.fn)())
    assert recorder.events == []


def test_a_coroutine_task_cannot_name_an_executor() -> None:
    """Coroutine tasks run on the engine's loop: executor= on one is an error at once."""

    async def fetch() -> int:
        return 1

    with pytest.raises(ExecutorError, match="coroutine task runs on the engine's event loop"):
        task(executor="cpu")(fetch)
    with pytest.raises(TypeError, match="must be an executor"):
        Engine(executor="processes")  # type: ignore[arg-type]


async def test_a_function_a_worker_cannot_load_fails_the_run_before_it_starts(
    processes: ProcessExecutor,
) -> None:
    """A function defined in another (pickle cannot name it): ExecutorError naming the task,
    before anything runs."""

    @task
    def local(x: int) -> int:
        return x

    engine = Engine(executor=processes)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with pytest.raises(
        ExecutorError,
        match=r"task 'local' cannot run in a worker process: its function .*<locals>.local cannot"
        r" be pickled .*define it at the top level of a module",
    ):
        await engine.run(local(1))
    assert recorder.events == []


async def test_arguments_that_cannot_cross_fail_the_task_saying_so(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """An argument that cannot be pickled fails the task with ExecutorError; so does a result."""
    with pytest.raises(TaskFailedError) as failed:
        await Engine(executor=processes).run(tasks.crunch(threading.Lock()))
    assert isinstance(failed.value.exception, ExecutorError)
    assert "its arguments cannot be pickled" in str(failed.value.exception)
    with pytest.raises(TaskFailedError) as failed:
        await Engine(executor=processes).run(tasks.returns_a_lock())
    assert isinstance(failed.value.exception, ExecutorError)
    assert "returned a lock that cannot be sent back from the worker process" in str(
        failed.value.exception
    )


async def test_an_exception_comes_back_with_its_worker_traceback(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """What the task raised is what fails it; the worker's traceback is its cause."""
    with pytest.raises(TaskFailedError) as failed:
        await Engine(executor=processes).run(tasks.raises("bad row"))
    exc = failed.value.exception
    assert type(exc) is ValueError
    assert str(exc) == "bad row"
    assert "cascade_worker_tasks.py" in str(exc.__cause__)
    assert "raise ValueError(text)" in str(exc.__cause__)


async def test_an_exception_that_cannot_cross_comes_back_as_a_stand_in(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """An exception that cannot be pickled: an ExecutorError with its type and text, and the
    worker's traceback as its cause."""
    with pytest.raises(TaskFailedError) as failed:
        await Engine(executor=processes).run(tasks.raises_unsendable("no way back"))
    exc = failed.value.exception
    assert isinstance(exc, ExecutorError)
    assert "raised Unsendable: no way back (in a worker process" in str(exc)
    assert "raise Unsendable(text)" in str(exc.__cause__)


async def test_a_workers_log_lines_reach_the_run_tagged_with_task_and_attempt(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """Lines logged and printed in a worker are the run's, as a thread's would be: tagged,
    filtered by this process's logging, within the budgets."""
    broker = InMemoryBroker()
    logger = tasks.log
    logger.setLevel("INFO")
    try:
        engine = Engine(
            InMemoryConnector(broker),
            executor=processes,
            logs=LogForwarding(capture_print=True),
        )
        await engine.run(tasks.noisy.map(n=[1, 2]))
    finally:
        logger.setLevel("NOTSET")
    lines = [
        (line.task_id, line.attempt, line.level, line.message.split(" in pid")[0], line.stream)
        for m in broker.history
        if "/logs/" in m.topic
        for line in decode_log_batch(m.raw).lines
    ]
    ids = sorted({line[0] for line in lines})
    assert [i.rsplit("[", 1)[1] for i in ids] == ["0]", "1]"]
    for task_id, n in zip(ids, [1, 2], strict=True):
        assert sorted(line[1:] for line in lines if line[0] == task_id) == [
            (1, "INFO", f"line {n}", None),  # its DEBUG line: below INFO, not forwarded
            (1, "INFO", f"printed {n}", "stdout"),
        ]
    assert engine.stats.log_lines_dropped == 0


async def test_a_killed_worker_fails_its_attempt_worker_lost_and_the_retry_succeeds(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """SIGKILL in the first attempt: it fails "worker lost", counted; the retry runs in a new
    pool and completes."""
    executor = ProcessExecutor(1)
    engine = Engine(executor=executor)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    try:
        worker = await engine.run(tasks.dies_once.with_retry(2)(str(tmp_path / "died")))
    finally:
        executor.shutdown()
    assert worker != os.getpid()
    retrying = [e for e in recorder.events if isinstance(e, TaskRetrying)]
    assert len(retrying) == 1
    assert retrying[0].attempt == 1
    assert isinstance(retrying[0].exception, WorkerLost)
    assert retrying[0].error.startswith("WorkerLost: worker lost (pid ")
    assert "killed by SIGKILL" in retrying[0].error
    completed = [e for e in recorder.events if isinstance(e, TaskCompleted)]
    assert [e.attempt for e in completed] == [2]
    assert executor.pools_made == 2


async def test_a_cancelled_run_cancels_queued_attempts_and_abandons_started_ones(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """One worker, three attempts: those handed to the pool's worker side (the one running and
    the one the pool queued to it) run on, abandoned; the third never starts."""
    executor = ProcessExecutor(1)
    engine = Engine(executor=executor)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(tasks.waits.map(folder=[str(tmp_path)] * 3, n=[0, 1, 2])))
    try:
        await recorder.until(lambda: sum(type(e) is TaskQueued for e in recorder.events) == 2)
        await eventually(lambda: (tmp_path / "started-0").exists())
        run_id = next(e.run_id for e in recorder.events if isinstance(e, RunStarted))
        report = engine.cancel(run_id, issued_by="test")
        assert report is not None
        assert [ref.task_id.rsplit("[", 1)[1] for ref in report.abandoned] == ["0]", "1]"]
        assert report.cancelled == []
        assert report.not_started == 1
        with pytest.raises(RunCancelledError):
            await run
        errors = {
            e.task_id.rsplit("[", 1)[1]: e.error
            for e in recorder.events
            if isinstance(e, TaskCancelled) and "[" in e.task_id
        }
        assert "its worker process runs it on to its end" in errors["0]"]
        assert "its worker process runs it on to its end" in errors["1]"]
        assert "runs on" not in errors["2]"]
    finally:
        (tmp_path / "release").write_text("")
        executor.shutdown()
    assert not (tmp_path / "started-2").exists()


async def test_processes_say_queued_until_a_worker_is_free(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """ProcessExecutor(1), three attempts: one RUNNING, two QUEUED (not started: the worker
    runs the first); each RUNNING once the attempt before it has ended, in the order handed."""
    executor = ProcessExecutor(1)
    engine = Engine(executor=executor)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(tasks.waits.map(folder=[str(tmp_path)] * 3, n=[0, 1, 2])))
    try:
        await recorder.until(lambda: sum(type(e) is TaskQueued for e in recorder.events) == 2)
        await eventually(lambda: (tmp_path / "started-0").exists())
        items = [e.task_id for e in recorder.events if type(e) is TaskRunning and "[" in e.task_id]
        assert [task_id[-3:] for task_id in items] == ["[0]"]
        queued = [e for e in recorder.events if type(e) is TaskQueued]
        assert sorted(e.task_id[-3:] for e in queued) == ["[1]", "[2]"]
        hold = queued[0].held_by[0]
        assert (hold.type, hold.executor, hold.workers) == ("queued", "processes", 1)
        assert not (tmp_path / "started-1").exists()
        (tmp_path / "release").write_text("")
        assert await run == [0, 1, 2]
    finally:
        (tmp_path / "release").write_text("")
        executor.shutdown()
    said = [
        (type(e).__name__, e.task_id[-3:])
        for e in recorder.events
        if isinstance(e, TaskEvent) and "[" in e.task_id
    ]
    running = [item for kind, item in said if kind == "TaskRunning"]
    assert running == ["[0]", "[1]", "[2]"]
    for item in ("[1]", "[2]"):
        before = f"[{int(item[1]) - 1}]"
        assert said.index(("TaskRunning", before)) < said.index(("TaskRunning", item))
        assert said.index(("TaskQueued", item)) < said.index(("TaskRunning", item))


async def test_threads_are_the_default_and_keep_their_pool_a_run() -> None:
    """Engine() runs plain functions in its own threads; ThreadExecutor(max_workers) sizes them."""
    assert isinstance(Engine().executor, ThreadExecutor)
    names: list[str] = []

    @task
    def where(i: int) -> int:
        names.append(threading.current_thread().name)
        return i

    assert await Engine(executor=ThreadExecutor(1)).run([where(i) for i in range(3)]) == [0, 1, 2]
    assert len(set(names)) == 1
    assert names[0].startswith("cascade-task")


async def test_an_attempt_past_its_timeout_is_abandoned_in_its_worker(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """TimeoutError fails the attempt at its timeout; the worker runs it on, the run goes on."""
    executor = ProcessExecutor(1)
    try:
        await Engine(executor=executor).run(tasks.crunch(0))  # the pool started: not timed
        with pytest.raises(TaskFailedError) as failed:
            await Engine(executor=executor).run(tasks.waits.with_timeout(0.5)(str(tmp_path), 0))
        assert isinstance(failed.value.exception, TimeoutError)
        assert "took more than 0.5 s" in str(failed.value.exception)
        assert (tmp_path / "started-0").exists()
    finally:
        (tmp_path / "release").write_text("")
        executor.shutdown()


async def test_resources_are_set_up_in_the_engines_process_and_their_values_sent(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """A sync resource's setup runs in the run's own threads; a task in a worker gets its value
    pickled; a value that cannot be pickled fails the task saying so."""
    setups: list[int] = []

    @resource(name="settings")
    def settings() -> Iterator[dict[str, Any]]:
        setups.append(os.getpid())
        yield {"factor": 3}

    engine = Engine(executor=processes, resources=[settings])
    assert await engine.run(tasks.scaled.map(x=[1, 2])) == [3, 6]
    assert setups == [os.getpid()]

    @resource(name="settings")
    def locked() -> Iterator[dict[str, Any]]:
        yield {"factor": threading.Lock()}

    with pytest.raises(TaskFailedError) as failed:
        await Engine(executor=processes, resources=[locked]).run(tasks.scaled(1))
    assert isinstance(failed.value.exception, ExecutorError)
    assert "a resource or an open file or connection stays in the engine's process" in str(
        failed.value.exception
    )


async def test_system_resources_are_given_back_when_the_worker_is_done(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """An attempt past its timeout keeps what it asked of the system resources until its
    worker is done with it, not until the run stopped waiting."""
    executor = ProcessExecutor(1)
    engine = Engine(executor=executor, system_resources={"cores": 1})
    try:
        await engine.run(tasks.crunch(0))  # the pool started: not timed
        waits = tasks.waits.with_constraints(cores=1).with_timeout(0.5)
        with pytest.raises(TaskFailedError) as failed:
            await engine.run(waits(str(tmp_path), 0))
        assert isinstance(failed.value.exception, TimeoutError)
        assert engine.system_resources_in_use == {"cores": 1.0}  # the worker runs it on
        (tmp_path / "release").write_text("")
        await eventually(lambda: engine.system_resources_in_use == {"cores": 0.0})
    finally:
        (tmp_path / "release").write_text("")
        executor.shutdown()


async def test_a_gate_in_a_graph_on_worker_processes_is_held_as_any(
    tasks: ModuleType, processes: ProcessExecutor
) -> None:
    """A gate never runs: nothing of it goes to a worker; approved, the task after it does."""
    engine = Engine(executor=processes)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    approved = gate("Crunch?")
    run = asyncio.create_task(engine.run(tasks.crunch(0).run_if(approved)))
    await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
    (held,) = [e for e in recorder.events if isinstance(e, TaskHeld)]
    reply = engine.decide(held.run_id, held.task_id, "complete", issued_by="test")
    assert reply is not None
    assert reply.applied
    worker, _ = await run
    assert worker != os.getpid()


class _Submitted:
    """A user's executor written to the public seam alone (``check``, ``start_run``, and a
    run's part with ``submit``, ``started``, ``close``): it runs each call in a thread of its
    own and notes what it was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, float] | None, bool]] = []
        self.closed = 0

    def check(self, task: Any) -> None:
        pass

    def start_run(self, max_concurrency: int) -> _Submitted:
        return self

    abandoned = "it runs on"

    def submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: Any,
        ended: Any = None,
        amounts: Any = None,
    ) -> Any:
        self.calls.append((fn.__name__, None if amounts is None else dict(amounts), bool(ended)))

        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                if ended is not None:
                    ended()

        return asyncio.to_thread(call)

    def started(self, task_id: str) -> bool:
        return True

    def close(self, *, wait: bool) -> None:
        self.closed += 1


@task
def _twice(x: int) -> int:
    return 2 * x


async def test_an_executor_of_a_users_gets_each_attempt_through_submit() -> None:
    """An executor written to the public seam alone gets each plain-function attempt as a
    call, with the system resources it holds and what gives them back."""
    mine = _Submitted()
    engine = Engine(executor=mine, system_resources={"gpu_slots": 1})
    target = [_twice(1), _twice.with_constraints(gpu_slots=1)(2)]
    assert await engine.run(target) == [2, 4]
    assert sorted(mine.calls, key=lambda call: call[1] is not None) == [
        ("_twice", None, False),
        ("_twice", {"gpu_slots": 1.0}, True),
    ]
    assert mine.closed == 1
    assert engine.system_resources_in_use == {"gpu_slots": 0}


@task(mode="compute")
def _squared(x: int) -> int:
    return x * x


@task
def _blocking(x: int) -> int:
    return x + 1


async def test_a_compute_task_runs_on_the_executor_named_compute() -> None:
    """mode="compute" goes to executors["compute"], passing over another named one; a blocking
    task stays on the default executor."""
    compute, other, default = _Submitted(), _Submitted(), _Submitted()
    engine = Engine(executor=default, executors={"other": other, "compute": compute})
    assert await engine.run([_squared(3), _blocking(3)]) == [9, 4]
    assert [call[0] for call in compute.calls] == ["_squared"]
    assert other.calls == []
    assert [call[0] for call in default.calls] == ["_blocking"]


async def test_a_compute_task_without_one_named_compute_runs_in_worker_processes(
    tasks: ModuleType,
) -> None:
    """No executor named "compute": the first ProcessExecutor among the named takes it (a
    worker's pid), the other tasks stay in the engine's process."""
    cpu = ProcessExecutor(1)
    first = _Submitted()
    engine = Engine(executors={"io": first, "cpu": cpu})
    try:
        elsewhere, here = await engine.run([task(mode="compute")(tasks.crunch.fn)(1), pid()])
    finally:
        cpu.shutdown()
    assert here == os.getpid()
    assert elsewhere[0] != os.getpid()
    assert first.calls == []


async def test_a_compute_task_without_a_compute_executor_runs_on_the_default() -> None:
    """No "compute" and no ProcessExecutor: the default executor takes it."""
    default, named = _Submitted(), _Submitted()
    engine = Engine(executor=default, executors={"io": named})
    assert await engine.run(_squared(4)) == 16
    assert [call[0] for call in default.calls] == ["_squared"]
    assert named.calls == []


async def test_executor_given_wins_over_mode() -> None:
    """@task(mode="compute", executor="io") runs on "io", not on "compute"."""
    compute, io = _Submitted(), _Submitted()
    engine = Engine(executors={"compute": compute, "io": io})
    both = task(mode="compute", executor="io")(_squared.fn)
    assert await engine.run(both(5)) == 25
    assert [call[0] for call in io.calls] == ["_squared"]
    assert compute.calls == []


def test_a_coroutine_task_cannot_be_compute_and_a_mode_is_one_of_two() -> None:
    """mode="compute" on a coroutine function and a mode that is neither: ExecutorError."""

    async def fetch() -> int:
        return 1

    with pytest.raises(ExecutorError, match="mode='compute' is for plain functions"):
        task(mode="compute")(fetch)
    with pytest.raises(ExecutorError, match="mode must be 'blocking' or 'compute', not 'gpu'"):
        task(mode="gpu")(_squared.fn)  # type: ignore[call-overload]
    assert task(_squared.fn).mode == "blocking"
    assert _squared.with_retry(2).mode == "compute"
