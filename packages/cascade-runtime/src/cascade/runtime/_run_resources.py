"""One run's resources: checked before its first task, each set up once on the first task that
injects it, and all torn down at the run's end, the last set up first.

A sync resource's setup runs in the run's thread pool (as a sync task does), its teardown in a
thread of its own (a cancelled run's pool may be full of threads that run on); an async one's
both on the run's loop. Setups run in the run's own context, not in the task that first asked:
what a setup logs is no task's.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast

from ._events import ResourceAcquired, ResourceReleased
from ._steps import describe
from .workflow._graph import Graph, Node
from .workflow._resource import Inject, Resource, ResourceFailed, ResourceMissing

__all__ = ["ResourceCounts", "RunResources", "check_resources"]

_log = logging.getLogger("cascade.runtime.engine")


class ResourceCounts(Protocol):
    """Where a run counts its resources (:class:`~cascade.runtime.EngineStats`)."""

    resources_set_up: int
    resource_teardowns_failed: int


def check_resources(graph: Graph, registry: Mapping[str, Resource]) -> None:
    """:class:`ResourceMissing` unless every resource ``graph``'s tasks inject is registered,
    and so is every resource those inject in turn, without a cycle among them."""
    if not graph.resources:
        return
    known = ", ".join(sorted(registry)) or "none"
    done: set[str] = set()
    for name, node in graph.resources.items():
        if name not in registry:
            lazy = node.lazy
            raise ResourceMissing(
                f"task {lazy.name!r} ({lazy.task_id}) injects resource {name!r}, which is not "
                f"registered (engine.register it; registered: {known})"
            )
        path = [name]
        stack = [iter(registry[name].injects)]
        while stack:
            needed = next(stack[-1], None)
            if needed is None:
                stack.pop()
                done.add(path.pop())
                continue
            dep = needed.resource
            if dep in path:
                cycle = " -> ".join([*path[path.index(dep) :], dep])
                raise ResourceMissing(f"resources inject each other in a cycle: {cycle}")
            if dep in done:
                continue
            if dep not in registry:
                raise ResourceMissing(
                    f"resource {path[-1]!r} injects resource {dep!r}, which is not registered "
                    f"(engine.register it; registered: {known})"
                )
            path.append(dep)
            stack.append(iter(registry[dep].injects))


def _markers(value: Any, found: dict[str, None]) -> None:
    """The names of the :class:`Inject` markers in ``value``, at any depth, into ``found``."""
    if type(value) is Inject:
        found[value.name] = None
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _markers(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _markers(item, found)


def _substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every :class:`Inject` in it replaced by its resource's value."""
    if type(value) is Inject:
        return values[value.name]
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, tuple):
        items = [_substitute(v, values) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(_substitute(v, values) for v in value)
    return value


class _Live:
    """A resource set up: its generator, to be torn down."""

    __slots__ = ("generator", "name")

    def __init__(self, name: str, generator: Any) -> None:
        self.name = name
        self.generator = generator  # a sync or an async generator, its value yielded


class RunResources:
    """The resources of one run: :meth:`inject` gives a task's call its resources' values
    (setting each up on first use, once, whoever else waits for it); :meth:`close` tears down
    those set up, the last first, at the run's end."""

    def __init__(
        self,
        registry: Mapping[str, Resource],
        run_id: str,
        executor: Callable[[], ThreadPoolExecutor],
        stats: ResourceCounts | None,
        announce: Callable[[ResourceAcquired | ResourceReleased], None] | None = None,
    ) -> None:
        self.registry = registry  # as checked at the run's start (check_resources)
        self.run_id = run_id
        self.executor = executor
        self.stats = stats
        self.announce = announce  # where ResourceAcquired and ResourceReleased go
        self.loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()  # the run's, before any task's
        # by name: its setup, whose result is (True, value) or (False, what it raised)
        self._setups: dict[str, asyncio.Task[tuple[bool, Any]]] = {}
        self._live: list[_Live] = []  # in the order they were set up
        self._lock = threading.Lock()  # _live and _closed, also from a sync setup's thread
        self._closed = False

    async def inject(
        self,
        node: Node,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        in_worker: bool = False,
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``args`` and ``kwargs`` for ``node``'s call: every :class:`Inject` in them replaced
        by its resource's value, and each inject default of its task that they give no value
        added by name. ``in_worker``: the call goes to a worker process, where a per-worker
        resource is made (:meth:`Resource.in_worker`), not here. :class:`ResourceFailed` when
        a resource's setup failed."""
        passed: dict[str, None] = {}
        _markers(args, passed)
        _markers(kwargs, passed)
        defaults = [d for d in node.lazy.task.injects if not d.given(args, kwargs)]
        wanted = dict(passed)
        for default in defaults:
            wanted[default.resource] = None
        values = {
            name: self.registry[name].in_worker()
            if in_worker and self.registry[name].per_worker
            else await self.get(name)
            for name in wanted
        }
        if passed:
            args, kwargs = _substitute(args, values), _substitute(kwargs, values)
        else:
            kwargs = dict(kwargs)
        for default in defaults:
            kwargs[default.param] = values[default.resource]
        return args, kwargs

    async def get(self, name: str) -> Any:
        """The value of the resource ``name``, set up now if it is the first to ask."""
        setup = self._setups.get(name)
        if setup is None:
            # in the run's context: the task asking first is only the first of many
            setup = self._context.run(self.loop.create_task, self._set_up(name))
            self._setups[name] = setup
        ok, value = await asyncio.shield(setup)
        if not ok:
            failure = ResourceFailed(name, describe(value))
            raise failure from value
        return value

    async def _set_up(self, name: str) -> tuple[bool, Any]:
        resource = self.registry[name]
        try:
            given = {d.param: await self.get(d.resource) for d in resource.injects}
            if resource.is_async:
                generator = cast(AsyncIterator[Any], resource.fn(**given))
                try:
                    value = await generator.__anext__()
                except StopAsyncIteration:
                    raise RuntimeError("its generator ended without yielding a value") from None
                self._set(_Live(name, generator))
            else:
                value = await self.loop.run_in_executor(
                    self.executor(), self._set_up_sync, name, resource, given
                )
        except Exception as exc:
            _log.warning(
                "run %s: resource %s failed at its setup: %s", self.run_id, name, describe(exc)
            )
            return False, exc
        if self.stats is not None:
            self.stats.resources_set_up += 1
        if self.announce is not None:
            self.announce(ResourceAcquired(run_id=self.run_id, resource_name=name))
        return True, value

    def _set_up_sync(self, name: str, resource: Resource, given: dict[str, Any]) -> Any:
        """In a thread of the run's pool."""
        generator = cast(Iterator[Any], resource.fn(**given))
        try:
            value = next(generator)
        except StopIteration:
            raise RuntimeError("its generator ended without yielding a value") from None
        if not self._set(_Live(name, generator)):  # the run ended while it was set up
            self._tear_down_sync(_Live(name, generator))
        return value

    def _set(self, live: _Live) -> bool:
        """Keep ``live`` for the run's end; ``False`` when that end has come already."""
        with self._lock:
            if self._closed:
                return False
            self._live.append(live)
            return True

    async def close(self) -> None:
        """Tear down every resource set up, the last set up first; a teardown that raises is
        logged and counted, and the others go on. A setup still running is cancelled (an async
        one) or torn down when it ends, in its thread (a sync one: Python cannot stop it)."""
        pending = [setup for setup in self._setups.values() if not setup.done()]
        for setup in pending:
            setup.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        with self._lock:
            self._closed = True
            live, self._live = self._live, []
        for entry in reversed(live):
            if self.registry[entry.name].is_async:
                released = await self._tear_down_async(entry)
            else:
                released = await _in_thread(self._tear_down_sync, entry)
            if released and self.announce is not None:
                self.announce(ResourceReleased(run_id=self.run_id, resource_name=entry.name))

    async def _tear_down_async(self, live: _Live) -> bool:
        """Whether it was torn down cleanly."""
        generator = live.generator
        try:
            await generator.__anext__()
        except StopAsyncIteration:
            return True
        except Exception as exc:
            self._teardown_failed(live, exc)
            return False
        try:
            await generator.aclose()
        finally:
            self._teardown_failed(live, RuntimeError("its generator yielded more than once"))
        return False

    def _tear_down_sync(self, live: _Live) -> bool:
        """Whether it was torn down cleanly."""
        generator = live.generator
        try:
            next(generator)
        except StopIteration:
            return True
        except Exception as exc:
            self._teardown_failed(live, exc)
            return False
        try:
            generator.close()
        finally:
            self._teardown_failed(live, RuntimeError("its generator yielded more than once"))
        return False

    def _teardown_failed(self, live: _Live, exc: BaseException) -> None:
        if self.stats is not None:
            self.stats.resource_teardowns_failed += 1
        _log.warning(
            "run %s: resource %s failed at its teardown: %s",
            self.run_id,
            live.name,
            describe(exc),
            exc_info=exc,
        )


async def _in_thread(fn: Callable[[_Live], bool], live: _Live) -> bool:
    """``fn(live)`` in a daemon thread of its own, awaited (``False`` where it raised)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()

    def finish(result: bool) -> None:
        if not done.done():
            done.set_result(result)

    def work() -> None:
        result = False
        try:
            result = fn(live)
        finally:
            loop.call_soon_threadsafe(finish, result)

    threading.Thread(target=work, name="cascade-resource-teardown", daemon=True).start()
    return await done
