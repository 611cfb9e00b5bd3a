"""Which executor runs which task: an engine's default executor and its named ones, checked
against a graph before its run starts, and their parts in one run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import ExecutorError
from ..workflow._graph import Graph
from ..workflow._task import Task
from ._executor import Executor, TakesAttempts, taking
from ._processes import ProcessExecutor
from ._threads import RunThreads, ThreadExecutor

__all__ = ["Placement", "RunPlacement"]


def _checked(executor: object, what: str) -> Executor:
    if not isinstance(executor, Executor):
        raise TypeError(
            f"{what} must be an executor (ThreadExecutor, ProcessExecutor, or an object with "
            f"check() and start_run()), not {type(executor).__name__}: {executor!r}"
        )
    return executor


class Placement:
    """An engine's executors: ``default`` for the plain-function tasks that name none, and
    ``named`` ones for those that do (``@task(executor="name")``). ``compute``: the name of
    the one a ``@task(mode="compute")`` that names none runs on (the one named ``"compute"``,
    else the first :class:`ProcessExecutor` among the named; ``None``: the default)."""

    def __init__(self, default: Executor | None, named: Mapping[str, Executor] | None) -> None:
        self.default = ThreadExecutor() if default is None else _checked(default, "executor")
        self.named: dict[str, Executor] = {}
        for name, executor in (named or {}).items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"executors' names must be non-empty strings, not {name!r}")
            self.named[name] = _checked(executor, f"executors[{name!r}]")
        self.compute: str | None = (
            "compute"
            if "compute" in self.named
            else next(
                (n for n, e in self.named.items() if isinstance(e, ProcessExecutor)),
                None,
            )
        )
        # the graph's functions are looked at before a run only where one may go elsewhere
        self._checks = not isinstance(self.default, ThreadExecutor) or any(
            not isinstance(executor, ThreadExecutor) for executor in self.named.values()
        )

    def check(self, graph: Graph) -> None:
        """:class:`ExecutorError` naming the first task of ``graph`` that names an executor
        the engine does not have, or whose function cannot go to its executor."""
        for name, node in graph.executors.items():
            if name not in self.named:
                lazy = node.lazy
                known = ", ".join(sorted(self.named)) or "none"
                raise ExecutorError(
                    f"task {lazy.name!r} ({lazy.task_id}) runs on executor {name!r}, which this "
                    f"engine does not have (Engine(executors={{{name!r}: ...}}); it has: {known})"
                )
        if not self._checks:
            return
        seen: set[tuple[int, str | None]] = set()
        for node in graph.nodes:
            spec = node.lazy.task
            if spec.is_async or spec.awaits_approval:  # on the loop, or never run
                continue
            key = (id(spec.fn), self.name_of(spec))
            if key in seen:
                continue
            seen.add(key)
            self.executor_of(spec).check(spec)

    def name_of(self, spec: Task[Any, Any]) -> str | None:
        """The name of the executor ``spec`` runs on (``None``: the default): the one it
        names, else for ``mode="compute"`` the compute one."""
        if spec.executor is not None:
            return spec.executor
        return self.compute if spec.mode == "compute" else None

    def executor_of(self, spec: Task[Any, Any]) -> Executor:
        """The executor ``spec`` runs on (its name checked known)."""
        name = self.name_of(spec)
        return self.default if name is None else self.named[name]

    def start_run(self, max_concurrency: int) -> RunPlacement:
        """The executors' parts in one run, each started when the run first needs it."""
        return RunPlacement(self, max_concurrency)


class RunPlacement:
    """The executors' parts in one run: ``default`` (the default executor's), ``threads``
    (the run's own threads, for its sync resources' setups: the default's where it is a
    :class:`ThreadExecutor`) and the named ones, started on first use."""

    def __init__(self, placement: Placement, max_concurrency: int) -> None:
        self.placement = placement
        self.max_concurrency = max_concurrency
        self.default: TakesAttempts = taking(placement.default.start_run(max_concurrency))
        self._threads = self.default if isinstance(self.default, RunThreads) else None
        self._named: dict[str, TakesAttempts] = {}

    @property
    def threads(self) -> RunThreads:
        """The run's threads (made at the first ask where the default executor is another)."""
        if self._threads is None:
            self._threads = ThreadExecutor().start_run(self.max_concurrency)
        return self._threads

    def named(self, name: str) -> TakesAttempts:
        """The run's part of the executor named ``name`` (checked known before the run)."""
        runner = self._named.get(name)
        if runner is None:
            started = self.placement.named[name].start_run(self.max_concurrency)
            runner = self._named[name] = taking(started)
        return runner

    def of(self, spec: Task[Any, Any]) -> TakesAttempts:
        """Where an attempt of ``spec`` (a plain function) runs."""
        name = self.placement.name_of(spec)
        return self.default if name is None else self.named(name)

    def sends_calls(self, spec: Task[Any, Any]) -> bool:
        """Whether an attempt of ``spec`` (a plain function) runs in another process, its call
        sent there (its executor's ``sends_calls``: ProcessExecutor's and DaskExecutor's)."""
        return bool(getattr(self.placement.executor_of(spec), "sends_calls", False))

    def close(self, *, wait: bool) -> None:
        """The run has ended: close every part it started."""
        runners = [self.default, *self._named.values()]
        if self._threads is not None and self._threads is not self.default:
            runners.append(self._threads)
        for runner in runners:
            runner.close(wait=wait)
