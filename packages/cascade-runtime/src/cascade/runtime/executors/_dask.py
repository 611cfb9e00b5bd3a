"""Plain-function tasks on a Dask cluster: :class:`DaskExecutor` (``cascade-runtime[dask]``).

Each attempt is one Dask future, keyed by its run, task id and attempt, submitted with Dask's
own retries off: the engine's policy decides what a failure leads to. What goes and comes back
is what goes to a worker process (``RemoteAttempt``: the call pickled, ``current_task()``, the
attempt's log lines); it runs on the Dask worker in ``run_attempt``, so the workers need
``cascade-runtime`` and the workflow's code importable, as Dask workers need any code they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import io
import logging
import pickle
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import ExecutorError, ValueLost, WorkerLost
from .._steps import describe
from ..results._on_worker import WorkerKeep, keep_on_worker
from ..workflow._task import ALWAYS, LazyResult
from ._remote import RemoteAttempt
from ._worker import Outcome, run_attempt, sendable_function

if TYPE_CHECKING:
    from .._tracing import AttemptSpan
    from ..workflow._task import Task
    from ._executor import Attempt, RunExecutor

__all__ = ["DEFAULT_LARGE_BYTES", "DaskExecutor", "OnCluster", "RunDask"]

# distributed's Client and Future, as far as this module's types go (distributed is typed in
# part only: its objects are taken as they come)
Client = Any
Future = Any

_log = logging.getLogger("cascade.runtime.engine")

DEFAULT_LARGE_BYTES = 64 * 1024
"""A task's result this large or larger (pickled) stays on the Dask worker that made it, where
only tasks of the same run on the same cluster take it (``DaskExecutor(large_bytes=...)``)."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "DaskExecutor needs the distributed package: pip install 'cascade-runtime[dask]'"
        ) from None
    _sized()
    return distributed


@functools.cache
def _sized() -> None:
    """Dask told the size of an attempt's outcome (its result's, pickled), as it weighs where
    to run what takes it and what to spill (it would take it for a small object)."""
    sizeof: Any = importlib.import_module("dask.sizeof").sizeof  # typed in part only
    sizeof.register(Outcome)(_size_of)


def _size_of(outcome: Outcome) -> int:
    return len(outcome.result or b"") + 256


class DaskExecutor:
    """Plain-function tasks on a Dask cluster, through its scheduler.

    ``address_or_client``: the scheduler's address (``tcp://10.0.0.5:8786``; the executor
    connects at its first attempt, in a thread, and closes what it opened at :meth:`close`)
    or a synchronous ``distributed.Client`` of yours (left open). Each attempt is one Dask
    future (key ``cascade-<run>-<task id>-<attempt>``), Dask's retries off; the workers need
    ``cascade-runtime`` and the workflow's code importable. A worker that dies while it holds
    an attempt fails it :class:`~cascade.runtime.WorkerLost` with its address, once the
    scheduler gives up on the task: run the scheduler with
    ``distributed.scheduler.allowed-failures`` 0, or it runs the task again on another worker
    by itself, unseen by the engine (a warning says so at the first connection). What the
    task logs comes back with its result; ``current_task()`` works on the worker; a cancel or
    a timeout cancels the attempt's future (a worker cannot stop a task it runs: it runs on,
    its result discarded). What a task asks of the engine's system resources
    (``with_constraints(gpu=1)``) it also asks of the worker that runs it, as Dask's
    ``resources=`` (workers started ``dask worker --resources "gpu=1"``); an attempt that asks
    for more than any worker of the cluster offers fails :class:`~cascade.runtime.ExecutorError`
    saying so, about a second after it is sent, instead of waiting unrunnable for good.

    A result of ``large_bytes`` or more (pickled; default 64 KiB) whose every taker is a task
    of the same run on this executor stays on the worker that made it, and goes from there to
    the workers that take it: the engine gets only what the attempt logged and where it ran.
    Its attempt is never run again by Dask: if that worker dies, the tasks that take it fail
    :class:`~cascade.runtime.WorkerLost` saying so. A result the engine needs (a local task's
    argument, the run's own result, a map's list, a condition or a route) comes back to it,
    large or not. With ``Engine(results=...)`` on a store the workers reach (a directory they
    share, S3...), the worker that ran a task writes its kept result there.
    """

    sends_calls = True
    """Its attempts run in other processes, their calls sent there: a per-worker resource a
    task injects is made in its worker (``@resource(per_worker=True)``)."""

    def __init__(
        self, address_or_client: str | Client, *, large_bytes: int = DEFAULT_LARGE_BYTES
    ) -> None:
        if large_bytes < 0:
            raise ValueError(f"large_bytes must be >= 0, not {large_bytes}")
        self.large_bytes = large_bytes
        distributed = _distributed()
        self._given: Client | None = None
        self.address: str | None = None
        if isinstance(address_or_client, str):
            self.address = address_or_client
        elif isinstance(address_or_client, distributed.Client):
            if address_or_client.asynchronous:
                raise TypeError(
                    "DaskExecutor takes a synchronous Client (Client(address)), not an "
                    "asynchronous one; or the scheduler's address"
                )
            self._given = address_or_client
        else:
            raise TypeError(
                "DaskExecutor takes a scheduler's address or a distributed.Client, not "
                f"{type(address_or_client).__name__}: {address_or_client!r}"
            )
        self._client: Client | None = self._given
        self._lock = threading.Lock()
        self._checked = False

    def check(self, task: Task[Any, Any]) -> None:
        """:class:`~cascade.runtime.ExecutorError` if ``task``'s function cannot be pickled
        (Dask's cloudpickle takes a lambda or a function defined in another by value)."""
        cloudpickle = _cloudpickle()
        try:
            cloudpickle.dumps(_by_value_main(task.fn))
        except Exception as exc:
            raise ExecutorError(
                f"task {task.name!r} cannot run on Dask: its function cannot be pickled "
                f"({describe(exc)})"
            ) from exc

    def start_run(self, max_concurrency: int) -> RunDask:
        """A run's attempts on this executor's cluster."""
        return RunDask(self)

    def client(self) -> Client:
        """The client, connected at the first ask, and again after the scheduler went away and
        it gave up (blocking: called in a thread)."""
        with self._lock:
            if self._client is not None and _gone(self._client) and self._given is None:
                self._client, self._checked = None, False
            if self._client is None:
                distributed = _distributed()
                self._client = distributed.Client(self.address, set_as_default=False)
            client = self._client
            if not self._checked:
                self._checked = True
                self._warn_reruns(client)
        return client

    def connected(self) -> Client | None:
        """The client, if it is connected (and its scheduler looked at) already."""
        client = self._client
        return client if self._checked and client is not None and not _gone(client) else None

    def _warn_reruns(self, client: Client) -> None:
        try:
            allowed = client.run_on_scheduler(_allowed_failures)
        except Exception as exc:  # a scheduler that does not say: nothing to warn about
            _log.debug("the Dask scheduler's allowed-failures is not known: %s", describe(exc))
            return
        if allowed:
            _log.warning(
                "the Dask scheduler at %s runs a task whose worker died again on another worker "
                "up to %d times by itself (distributed.scheduler.allowed-failures), unseen by the "
                "engine: set it to 0 so that each is an attempt of the task's retries",
                client.scheduler.address,
                allowed,
            )

    def close(self) -> None:
        """Close the client this executor opened (one given to it stays open)."""
        with self._lock:
            client, self._client = self._client, self._given
        if client is not None and client is not self._given:
            client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address or self._given!r})"


def _allowed_failures(dask_scheduler: Any) -> int:
    """On the scheduler: how often it reruns a task whose worker died."""
    return int(dask_scheduler.allowed_failures)


def _by_value_main(fn: Any) -> Any:
    """A function of the script's ``__main__`` itself (cloudpickle sends it by value: a Dask
    worker's ``__main__`` is not the script); any other by name, as to a worker process."""
    return fn if getattr(fn, "__module__", None) == "__main__" else sendable_function(fn)


def _cloudpickle() -> Any:
    return importlib.import_module("cloudpickle")  # distributed's own dependency


class OnCluster:
    """A task's result held on the Dask cluster, by the worker that made it (``worker``):
    its attempt's ``future`` (the engine's interest keeps it there), and its size pickled
    (``nbytes``). Only a task of the same run on the same executor takes it (from there);
    anything else has its value, never this."""

    __slots__ = ("future", "nbytes", "runner", "task_id", "worker")

    def __init__(self, future: Future, runner: RunDask, task_id: str, worker: str, nbytes: int):
        self.future = future
        self.runner = runner
        self.task_id = task_id
        self.worker = worker
        self.nbytes = nbytes

    def __reduce__(self) -> Any:
        raise TypeError(f"{self!r} goes to no process but a worker of its cluster, as an argument")

    def __repr__(self) -> str:
        return (
            f"<the result of task {self.task_id}, {self.nbytes:,} bytes held by the Dask worker "
            f"{self.worker}>"
        )


class DaskAttempt(RemoteAttempt):
    """An attempt bound for the cluster: what :class:`RemoteAttempt` holds, the ``amounts``
    of resources it asks of its worker, its trace ``span``; the results held on the cluster
    among its arguments (``inputs``, pickled in their place as their index), what its worker
    keeps of its result in the run's store (``keep``), and whether its result may stay on
    its worker (``stays``)."""

    __slots__ = ("amounts", "inputs", "keep", "span", "stays")

    def __init__(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        ended: Callable[[], None] | None,
        amounts: Mapping[str, float] | None,
        runner: RunDask,
        keep: WorkerKeep | None = None,
        stays: bool = False,
    ) -> None:
        self.inputs: list[OnCluster] = []
        dumps = _cloudpickle().dumps if not runner.held else functools.partial(_dumps, self, runner)
        super().__init__(fn, args, kwargs, "Dask", dumps, _by_value_main, ended)
        self.amounts = dict(amounts) if amounts else None
        self.span = span
        self.keep = keep
        self.stays = stays

    def resources(self) -> tuple[tuple[str, float], ...]:
        """Its amounts, as one key of the attempts that ask the same."""
        return tuple(sorted(self.amounts.items())) if self.amounts else ()

    def lost(self) -> ValueLost | None:
        """If a result it takes was lost with its worker: its failure, saying which."""
        for taken in self.inputs:
            if taken.future.status != "finished":
                return ValueLost(
                    f"worker lost ({taken.worker}): the result of task {taken.task_id} that this "
                    f"attempt takes was lost with the Dask worker that held it "
                    f"({taken.future.status}); that task is never run again unseen: rerun the run"
                )
        return None


def _dumps(attempt: DaskAttempt, runner: RunDask, value: Any) -> bytes:
    """``value`` pickled with each result of ``runner``'s held on the cluster in it as its
    index among ``attempt.inputs`` (its worker gets them from where they are)."""
    buffer = io.BytesIO()
    _taking()(buffer, attempt.inputs, runner).dump(value)
    return buffer.getvalue()


@functools.cache
def _taking() -> Any:
    """cloudpickle's pickler, that pickles an :class:`OnCluster` as its index among the
    attempt's inputs."""

    class Taking(_cloudpickle().Pickler):  # type: ignore[misc]
        def __init__(self, file: io.BytesIO, inputs: list[OnCluster], runner: RunDask) -> None:
            super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
            self.inputs = inputs
            self.runner = runner
            self.taken: dict[int, int] = {}

        def persistent_id(self, obj: Any) -> int | None:
            if type(obj) is not OnCluster:
                return None
            if obj.runner is not self.runner:
                raise TypeError(f"{obj!r} is another run's, or another cluster's")
            index = self.taken.get(id(obj))
            if index is None:
                index = self.taken[id(obj)] = len(self.inputs)
                self.inputs.append(obj)
            return index

    return Taking


class _Given(pickle.Unpickler):
    """On the worker: a payload, each result it takes in the place of its index."""

    def __init__(self, data: bytes, given: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self.given = given

    def persistent_load(self, pid: Any) -> Any:
        return self.given[pid]


def _load_taking(taken: list[Outcome], data: bytes) -> Any:
    return _Given(data, [pickle.loads(outcome.result or b"") for outcome in taken]).load()


class Held(Outcome):
    """An outcome whose result stays on the worker that made it (its future's type says so
    to the engine, which reads only :meth:`told` of it)."""

    __slots__ = ()

    @classmethod
    def of(cls, outcome: Outcome) -> Held:
        held = cls(outcome.result, None, "", outcome.lines, outcome.over)
        held.worker, held.kept = outcome.worker, outcome.kept
        return held

    def told(self) -> tuple[Outcome, int]:
        """What the engine reads of it: all but its result, and its result's size."""
        told = Outcome(None, None, "", self.lines, self.over)
        told.worker, told.kept = self.worker, self.kept
        return told, len(self.result or b"")


def _told(keys: list[str], dask_worker: Any) -> dict[str, tuple[Outcome, int]]:
    """On a worker (``client.run``: in its event loop, not behind the tasks its threads run):
    what the engine reads of each of ``keys`` it holds (:meth:`Held.told`)."""
    told = {}
    for key in keys:
        held = dask_worker.data.get(key)
        if isinstance(held, Held):
            told[key] = held.told()
    return told


def run_on_dask(
    payload: bytes,
    context: Any,
    lines: Any,
    taken: list[Outcome] | None = None,
    keep: WorkerKeep | None = None,
    large: int | None = None,
) -> Outcome:
    """One attempt, on a Dask worker (:func:`run_attempt`), said to have run at its address:
    ``taken``, the outcomes of the results held on the cluster it takes (Dask brings them
    here); ``keep``, where its result is kept in the run's store; ``large``, where its result
    may stay here: the size from which it does (:class:`Held`)."""
    _sized()
    loads: Callable[[bytes], Any] = pickle.loads
    if taken:
        loads = functools.partial(_load_taking, taken)
    then = functools.partial(keep_on_worker, keep) if keep is not None else None
    outcome = run_attempt(payload, context, lines, loads, then)
    try:
        outcome.worker = str(_distributed().get_worker().address)
    except Exception:  # not in a worker (a client's local run): where is not known
        outcome.worker = None
    if large is not None and outcome.result is not None and len(outcome.result) >= large:
        return Held.of(outcome)
    return outcome


def _offers(amounts: Mapping[str, float], offered: Mapping[str, float]) -> bool:
    """Whether a worker that offers ``offered`` can ever run an attempt that asks ``amounts``."""
    return all(offered.get(resource, 0) >= amount for resource, amount in amounts.items())


def _said(amounts: Mapping[str, float]) -> str:
    return ", ".join(f"{resource}={amount:g}" for resource, amount in sorted(amounts.items()))


def _taken_here(attempt: Attempt, runner: RunExecutor) -> bool:
    """Whether every task that takes ``attempt``'s result takes it as an argument only, and runs
    on ``runner`` (and it is neither the run's result nor a map's item)."""
    node = attempt.node
    if node.item_of is not None or not node.dependents or id(node.lazy) in attempt.run.roots:
        return False
    runs_on = attempt.run.runs_on
    for dependent in node.dependents:
        lazy = dependent.lazy
        spec = lazy.task
        if (
            type(lazy) is not LazyResult
            or spec.is_async
            or spec.awaits_approval
            or spec.cache is not None
            or dependent.routers
            or lazy.condition is not ALWAYS
            or lazy.order
            or (
                lazy.resources is not None
                and any(isinstance(amount, LazyResult) for _, amount in lazy.resources)
            )
            or runs_on(spec) is not runner
        ):
            return False
    return True


class RunDask:
    """A run's attempts on a :class:`DaskExecutor`'s cluster.

    Attempts started in one turn of the run's loop go to the scheduler together (one
    ``client.map`` for those asking the same resources, each its own key), and those that
    ended meanwhile come back together (one ``gather``), in a thread of the run's: Dask's
    per-future round trips would cost each task more than the engine does. That thread also
    looks, every second, for attempts no worker can run: their scheduler gone, or their
    resources offered by no worker.
    """

    abandoned = "its Dask future is cancelled; a worker that runs it runs on to its end"

    def __init__(self, executor: DaskExecutor) -> None:
        self.executor = executor
        self.held: list[OnCluster] = []  # the results it holds on the cluster, till it closes
        self._loop = asyncio.get_running_loop()
        # by task id, till they end: the attempt, its Dask future, and who awaits it
        self._futures: dict[str, tuple[DaskAttempt, Future, asyncio.Future[Any]]] = {}
        self._pending: list[tuple[DaskAttempt, asyncio.Future[Any]]] = []
        self._connecting: set[asyncio.Task[None]] = set()
        self._ended: queue.SimpleQueue[tuple[DaskAttempt, Future, asyncio.Future[Any]] | None]
        self._ended = queue.SimpleQueue()
        self._collector: threading.Thread | None = None

    def take(self, attempt: Attempt) -> Any:
        """``attempt``, submitted (:meth:`submit`) with what its worker keeps of its result in
        the run's store (``attempt.kept``, its report set there once it ends), and whether its
        result may stay on the cluster: where the run needs nothing of it (nor to keep it) and
        only tasks of the run on this cluster take it, as an argument (not a condition, a
        route, a map, a cache, the run's result)."""
        node = attempt.node
        keep: WorkerKeep | bool = False
        results = attempt.run.results
        if results is not None:
            keep = results.on_worker(node)
        kept = attempt.kept = keep if isinstance(keep, WorkerKeep) else None
        stays = keep is not True and node.lazy.task.cache is None and _taken_here(attempt, self)
        grant = attempt.grant
        return self.submit(
            attempt.fn,
            attempt.args,
            attempt.kwargs,
            attempt.span,
            None if grant is None else grant.release,
            None if grant is None else grant.amounts,
            keep=kept,
            stays=stays,
        )

    def submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        ended: Callable[[], None] | None = None,
        amounts: Mapping[str, float] | None = None,
        *,
        keep: WorkerKeep | None = None,
        stays: bool = False,
    ) -> Any:
        """``fn(*args, **kwargs)`` as one Dask future, sent with the others of this turn of the
        loop, on a worker that offers ``amounts`` (Dask's ``resources=``); its end awaited
        here, ``span`` told the worker's address; ``ended`` called when its future ends (or it
        is never sent). The results held on the cluster among its arguments (:class:`OnCluster`)
        go to its worker from where they are; ``keep``: its worker keeps its result in the
        run's store so (its report set on it); ``stays``: its result, if large, stays on its
        worker (it gives an :class:`OnCluster`), and Dask never computes it again."""
        attempt = DaskAttempt(fn, args, kwargs, span, ended, amounts, self, keep, stays)
        done: asyncio.Future[Any] = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append((attempt, done))
        return self._attempt(attempt, done)

    async def _attempt(self, attempt: DaskAttempt, done: asyncio.Future[Any]) -> Any:
        try:
            return await done
        except asyncio.CancelledError:
            sent = self._futures.pop(attempt.task_id, None)
            if sent is not None:
                self._cancel(sent[1])
            raise

    def _flush(self) -> None:
        """Send this turn's attempts (those not cancelled meanwhile), connected first if need
        be."""
        batch = []
        for attempt, done in self._pending:
            if done.done():
                attempt.end()  # cancelled before it was sent
            else:
                batch.append((attempt, done))
        self._pending = []
        if not batch:
            return
        client = self.executor.connected()
        if client is not None:
            self._send(client, batch)
            return
        connecting = self._loop.create_task(self._connect_and_send(batch))
        self._connecting.add(connecting)
        connecting.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, batch: list[tuple[DaskAttempt, asyncio.Future[Any]]]) -> None:
        try:
            client = await asyncio.to_thread(self.executor.client)
        except Exception as exc:
            failure = WorkerLost(f"worker lost (no Dask scheduler: {describe(exc)})")
            for attempt, done in batch:
                attempt.end()
                _settle(done, None, failure)
            return
        self._send(client, batch)

    def _send(self, client: Client, batch: list[tuple[DaskAttempt, asyncio.Future[Any]]]) -> None:
        if not batch:
            return
        for attempt, done in batch:
            if done.done():
                attempt.end()  # cancelled while the client connected
        batch = [(attempt, done) for attempt, done in batch if not done.done()]
        if not batch:
            return
        if _gone(client):
            failure = WorkerLost(f"worker lost (the Dask scheduler {_address(client)} is gone)")
            for attempt, done in batch:
                attempt.end()
                _settle(done, None, failure)
            return
        Alike = tuple[tuple[tuple[str, float], ...], bool]  # resources asked; whether it stays
        alike: dict[Alike, list[tuple[DaskAttempt, asyncio.Future[Any]]]] = {}
        for item in batch:
            alike.setdefault((item[0].resources(), item[0].stays), []).append(item)
        for (resources, stays), items in alike.items():
            if stays:
                self._loop.run_in_executor(
                    None, self._scatter_calls, client, items, dict(resources) or None
                )
            else:
                self._map(client, items, dict(resources) or None)
        if self._collector is None:
            self._collector = threading.Thread(
                target=self._collect, name="cascade-dask", daemon=True
            )
            self._collector.start()

    def _scatter_calls(
        self,
        client: Client,
        batch: list[tuple[DaskAttempt, asyncio.Future[Any]]],
        resources: dict[str, float] | None,
    ) -> None:
        """In a thread: the calls of ``batch``, attempts whose results may stay on the cluster,
        scattered first (data, not computed: a result computed from data Dask no longer has is
        never computed again, so an attempt runs once however its result is lost); then sent
        from the run's loop."""
        try:
            calls = client.scatter(
                {f"{_key(attempt)}-call": attempt.payload for attempt, _ in batch}, hash=False
            )
        except Exception as exc:
            calls = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            self._loop.call_soon_threadsafe(self._map, client, batch, resources, calls)

    def _map(
        self,
        client: Client,
        batch: list[tuple[DaskAttempt, asyncio.Future[Any]]],
        resources: dict[str, float] | None,
        calls: dict[str, Future] | Exception | None = None,
    ) -> None:
        """``batch``, attempts that ask the same ``resources``, as one ``client.map`` (``calls``:
        their payloads scattered, by key, where their results may stay on the cluster; or why
        they could not be)."""
        if calls is not None:  # sent from a thread: some may have been cancelled meanwhile
            for attempt, done in batch:
                if done.done():
                    attempt.end()
            batch = [(attempt, done) for attempt, done in batch if not done.done()]
        attempts = [attempt for attempt, _ in batch]
        large = self.executor.large_bytes
        # what takes, keeps or may stay: passed only where some attempt does (each Dask task
        # of thousands costs its arguments)
        more = (
            [
                [[taken.future for taken in attempt.inputs] for attempt in attempts],
                [attempt.keep for attempt in attempts],
                [large if attempt.stays else None for attempt in attempts],
            ]
            if calls is not None or any(a.inputs or a.keep for a in attempts)
            else []
        )
        try:
            if isinstance(calls, Exception):
                raise calls
            futures = client.map(
                run_on_dask,
                [attempt.payload for attempt in attempts]
                if calls is None
                else [calls[f"{_key(attempt)}-call"] for attempt in attempts],
                [attempt.context for attempt in attempts],
                [attempt.lines for attempt in attempts],
                *more,
                key=[_key(attempt) for attempt in attempts],
                pure=False,
                retries=0,
                resources=resources,
            )
        except Exception as exc:
            for attempt, done in batch:
                attempt.end()
                _settle(done, None, attempt.lost() or exc)
            return
        ended = self._ended
        for (attempt, done), future in zip(batch, futures, strict=True):
            self._futures[attempt.task_id] = (attempt, future, done)
            future.add_done_callback(lambda f, a=attempt, d=done: ended.put((a, f, d)))

    def _collect(self) -> None:
        """The run's thread that takes the attempts that ended, as many at once as have, their
        results in one gather, to their awaiting futures on the loop; and every second, the
        attempts no worker can run."""
        ended = self._ended
        look = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            if now >= look:
                look = now + 1.0
                self._give_up_if_gone()
                self._give_up_unrunnable()
            try:
                first = ended.get(timeout=max(0.0, look - now))
            except queue.Empty:
                continue
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    more = ended.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ended.put(None)  # the run closed: after this batch
                    break
                batch.append(more)
            finished = [item for item in batch if item[1].status == "finished"]
            held = [item for item in finished if item[1].type is Held]
            if held:
                finished = [item for item in finished if item[1].type is not Held]
            results: dict[int, Any] = {}
            if finished:
                try:
                    gathered = finished[0][1].client.gather([future for _, future, _ in finished])
                    results = {id(item[1]): r for item, r in zip(finished, gathered, strict=True)}
                except Exception:  # one of them lost meanwhile: each on its own, below
                    results = {}
            if held:
                results.update(_read_told([future for _, future, _ in held]))
            for attempt, future, done in batch:
                attempt.end()
                value, failure, worker = self._outcome(attempt, future, results)
                self._end(attempt, future, done, value, failure, worker)

    def _outcome(
        self, attempt: DaskAttempt, future: Future, results: dict[int, Any]
    ) -> tuple[Any, BaseException | None, str | None]:
        """What ``future`` gave: the attempt's value or failure, and the worker it ran on."""
        try:
            status = future.status
            if status == "finished" and future.type is Held:
                found = results.get(id(future))
                if found is None:
                    return None, _held_lost(future), None
                told, nbytes = found
                _, failure = attempt.settle(told, held=True)
                if attempt.keep is not None:
                    attempt.keep.report, attempt.keep.worker = told.kept, told.worker
                handle = OnCluster(future, self, attempt.task_id, str(told.worker), nbytes)
                self.held.append(handle)
                return handle, failure, told.worker
            if status == "finished":
                outcome = results[id(future)] if id(future) in results else future.result()
                if attempt.keep is not None:
                    attempt.keep.report, attempt.keep.worker = outcome.kept, outcome.worker
                return (*attempt.settle(outcome), outcome.worker)
            lost = attempt.lost()
            if lost is not None:
                return None, lost, None
            if status == "error":
                failure, worker = _failure(future.exception())
                return None, failure, worker
            dropped = WorkerLost(  # cancelled, or lost with the scheduler
                f"worker lost (the Dask scheduler {_scheduler(future)} dropped the attempt, "
                f"{status}: it went away, someone cancelled it, or the worker that held its "
                "call died): this attempt counts as failed"
            )
            return None, dropped, None
        except Exception as exc:  # the client could not give what it had
            return None, exc, None

    def _end(
        self,
        attempt: DaskAttempt,
        future: Future,
        done: asyncio.Future[Any],
        value: Any,
        failure: BaseException | None,
        worker: str | None = None,
    ) -> None:
        """From the collecting thread: the attempt's end to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            self._loop.call_soon_threadsafe(
                self._settle, attempt, future, done, value, failure, worker
            )

    def _settle(
        self,
        attempt: DaskAttempt,
        future: Future,
        done: asyncio.Future[Any],
        value: Any,
        failure: BaseException | None,
        worker: str | None,
    ) -> None:
        """On the loop: the attempt's end to whoever awaits it (its span told where it ran)."""
        sent = self._futures.get(attempt.task_id)
        if sent is not None and sent[1] is future:
            del self._futures[attempt.task_id]
        if worker is not None and attempt.span is not None and not done.done():
            attempt.span.ran_on(worker)
        _settle(done, value, failure)

    def _give_up_if_gone(self) -> None:
        """In the collecting thread, every second while nothing ends: the attempts whose
        client gave up on its scheduler (it went away, and did not come back in the client's
        reconnection time) fail :class:`WorkerLost`; Dask would never end them."""
        for attempt, future, done in list(self._futures.values()):
            client = future.client
            if _gone(client):
                attempt.end()
                failure = WorkerLost(
                    f"worker lost (the Dask scheduler {_address(client)} went away and did not "
                    "come back): this attempt counts as failed"
                )
                self._end(attempt, future, done, None, failure)

    def _give_up_unrunnable(self) -> None:
        """In the collecting thread: the attempts that ask resources no worker of their cluster
        offers fail :class:`ExecutorError` saying what the workers offer (Dask would hold them
        unrunnable till such a worker joins), their futures cancelled."""
        asking = [
            sent
            for sent in list(self._futures.values())
            if sent[0].amounts and sent[1].status == "pending"
        ]
        if not asking:
            return
        client = asking[0][1].client
        try:
            workers = client.scheduler_info(n_workers=-1)["workers"]
        except Exception as exc:  # gone: _give_up_if_gone says so once the client gives up
            _log.debug("the Dask scheduler's workers are not known: %s", describe(exc))
            return
        offered = {address: info.get("resources") or {} for address, info in workers.items()}
        for attempt, future, done in asking:
            amounts = attempt.amounts
            assert amounts is not None
            if any(_offers(amounts, offer) for offer in offered.values()):
                continue
            offers = "; ".join(
                f"{address}: {_said(offer) or 'no resources'}"
                for address, offer in sorted(offered.items())
            )
            failure = ExecutorError(
                f"task {attempt.task_id} asks its Dask worker for {_said(amounts)}, which no "
                f"worker of the cluster at {_address(client)} offers ({offers or 'no workers'}): "
                "start workers with dask worker --resources, or ask for less"
            )
            _cancel(future)
            attempt.end()
            self._end(attempt, future, done, None, failure)

    def _cancel(self, future: Future) -> None:
        """Cancel ``future`` at the scheduler without waiting for its answer (in a thread)."""
        self._loop.run_in_executor(None, _cancel, future)

    def started(self, task_id: str) -> bool:
        """Taken as started: a Dask future does not say whether a worker runs it yet."""
        return True

    def close(self, *, wait: bool) -> None:
        """Cancel the run's futures that have not ended (the client stays the executor's), let
        go of the results it held on the cluster, and end its collecting thread."""
        for _, future, _ in list(self._futures.values()):
            self._cancel(future)
        self._futures.clear()
        for handle in self.held:
            with contextlib.suppress(Exception):  # gone with its client: nothing to let go
                handle.future.release()
        self.held.clear()
        for connecting in list(self._connecting):
            connecting.cancel()
        self._ended.put(None)


def _gone(client: Client) -> bool:
    """Whether ``client`` gave up on its scheduler (or was closed)."""
    return str(getattr(client, "status", "running")) in ("closing", "closed", "failed")


def _address(client: Client) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:
        return "(its address unknown)"


def _cancel(future: Future) -> None:
    """Cancel ``future`` at its scheduler, if there is one to tell."""
    with contextlib.suppress(Exception):  # gone, or closed: nothing runs it any more
        future.cancel()


def _key(attempt: RemoteAttempt) -> str:
    """An attempt's Dask key: its run, task id and attempt."""
    context = attempt.context
    if context is None:
        return f"cascade-{attempt.task_id}-{id(attempt)}"
    return f"cascade-{context.run_id}-{context.task_id}-{context.attempt}"


def _failure(exc: BaseException | None) -> tuple[BaseException, str | None]:
    """What a failed future's exception means for its attempt, and the worker it names."""
    killed = _distributed().scheduler.KilledWorker
    if isinstance(exc, killed):
        worker = str(getattr(exc.last_worker, "address", exc.last_worker))
        return WorkerLost(
            f"worker lost ({worker}): the Dask worker died while it held this attempt; it "
            "counts as failed"
        ), worker
    if exc is None:
        return ExecutorError("the Dask future failed without an exception"), None
    return exc, None


def _read_told(futures: list[Future]) -> dict[int, tuple[Outcome, int]]:
    """What the engine reads of each future whose result stays on its worker (:meth:`Held.told`),
    by the future's ``id``: asked of the workers that hold them, in one call (``client.run``:
    in their event loops, never behind a task); those not found are not in it."""
    client = futures[0].client
    try:
        holders = client.who_has(futures)
        workers = sorted({address for held in holders.values() for address in held[:1]})
        if not workers:
            return {}
        answers = client.run(_told, [f.key for f in futures], workers=workers, on_error="return")
    except Exception as exc:  # lost meanwhile, or the scheduler: each fails saying so
        _log.debug("the Dask workers did not say what their results were: %s", describe(exc))
        return {}
    told: dict[str, tuple[Outcome, int]] = {}
    for answer in answers.values():
        if isinstance(answer, dict):
            told.update(answer)
    return {id(f): told[f.key] for f in futures if f.key in told}


def _held_lost(future: Future) -> WorkerLost:
    return WorkerLost(
        f"worker lost: the Dask worker that held the result of this attempt ({future.key}) was "
        "gone before the engine could read what it logged: this attempt counts as failed"
    )


def _scheduler(future: Future) -> str:
    return _address(future.client)


def _settle(done: asyncio.Future[Any], value: Any, failure: BaseException | None) -> None:
    if done.done():  # cancelled: a timeout, or the run stopped
        return
    if failure is not None:
        done.set_exception(failure)
    else:
        done.set_result(value)
