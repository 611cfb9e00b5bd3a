"""A run's cached tasks (``with_cache``): the result an earlier run kept for the same fingerprint,
looked up in the results store's cache entries and proven off the loop, or a user's policy
asked; and the error a run of a task cached in the store raises without one."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from .._errors import CacheError
from .._stats import EngineStats
from .._steps import describe
from ..workflow._cache_policy import node_cache
from ..workflow._graph import Graph, Node
from ._results import CacheEntry, ResultMissing, ResultStore, decode_kept
from ._run_results import RunResults

__all__ = ["CLOCK_SKEW", "Hit", "RunCache", "check_cache"]

_log = logging.getLogger("cascade.runtime.engine")

CLOCK_SKEW = 60.0
"""How far ahead of this engine's clock a cache entry may be dated (another engine's clock)
before a cache with ``expire`` refuses it: one dated further ahead would never expire."""


def check_cache(graph: Graph, store: ResultStore | None) -> None:
    """:class:`CacheError` naming the first task of ``graph`` cached in the results store
    when there is no store to look in (``Engine(results=...)``)."""
    if store is not None:
        return
    for node in graph.cached:
        if node_cache(node.lazy).policy is None:
            lazy = node.lazy
            raise CacheError(
                f"task {lazy.name!r} ({lazy.task_id}) is cached in the results store "
                "(with_cache), but this engine keeps no results: Engine(results=...)"
            )


class Hit:
    """A cached task's result: its ``value``, and the run that kept it (``from_run``; ``None``
    from a policy)."""

    __slots__ = ("from_run", "value")

    def __init__(self, value: Any, from_run: str | None) -> None:
        self.value = value
        self.from_run = from_run


def _look_up(store: ResultStore, fingerprint: str, expire: float | None) -> tuple[Any, CacheEntry]:
    """The value and entry of ``fingerprint``'s newest kept result, proven (blocks: off the
    loop); :class:`LookupError` when there is none; :class:`ResultMissing` saying why the one
    there is not taken."""
    entry = store.cache_entry(fingerprint)
    if entry is None:
        raise LookupError(fingerprint)
    kept = f"(from run {entry.run_id[:12]})"
    if expire is not None:
        age = time.time() - entry.at
        if age > expire:
            raise ResultMissing(f"{kept} is {age:,.0f} s old, over its expire ({expire:g} s)")
        if age < -CLOCK_SKEW:
            raise ResultMissing(f"{kept} is dated {-age:,.0f} s ahead of this engine's clock")
    try:
        data = store.read_bytes(fingerprint, size=entry.size, sha256=entry.sha256)
    except ResultMissing as exc:
        raise ResultMissing(f"{kept} {exc.detail}") from None
    try:
        return decode_kept(data), entry
    except msgspec.DecodeError as exc:
        raise ResultMissing(f"{kept} cannot be decoded: {exc}") from None


async def _off_loop(store: ResultStore, work: Callable[[], Any]) -> Any:
    """``work()`` in a daemon thread of its own, waited for the store's ``read_timeout`` at most
    (``TimeoutError``): a file system that never answers holds that thread, never the run."""
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            value = work()
        except BaseException as exc:
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # given up on
                done.set_exception(exc)
        else:
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                done.set_result(value)

    threading.Thread(target=run, name="cascade-cache-read", daemon=True).start()
    return await asyncio.wait_for(asyncio.wrap_future(done), store.read_timeout)


def _inputs(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A call's arguments by parameter name (a policy's ``inputs``); positional ones a
    signature does not name by their position (``"0"``, ``"1"``, ...)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {**{str(index): value for index, value in enumerate(args)}, **kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)


class RunCache:
    """The cached tasks of one run: :meth:`take` before a task's first attempt, :meth:`save`
    after an attempt of a task cached by a policy."""

    def __init__(self, results: RunResults | None, stats: EngineStats) -> None:
        self.results = results
        self.stats = stats

    async def take(self, node: Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hit | None:
        """The cached result of ``node`` called with ``args`` and ``kwargs``, or ``None``: it
        runs (why it does, where a result was there but not taken, is said and counted)."""
        cache = node_cache(node.lazy)
        if cache.policy is not None:
            return await self._ask(node, cache.policy, args, kwargs)
        results = self.results
        assert results is not None  # check_cache: a run without a store does not start
        if results.forces(node):
            return None  # a rerun forces it: run whatever is kept
        fingerprint = results.fingerprint(node)
        if fingerprint is None:
            return None  # not reusable: its COMPLETED says why in not_kept
        upstream = results.given_upstream(node)
        if upstream is not None:
            if await self._kept(results.store, fingerprint):
                results.refuse(node, f"decided upstream: {upstream}")
            return None
        try:
            value, entry = await _off_loop(
                results.store, lambda: _look_up(results.store, fingerprint, cache.expire)
            )
        except LookupError:
            return None  # never kept: it runs, and its result is kept
        except ResultMissing as exc:
            results.refuse(node, f"its cached result {exc.detail}")
            return None
        except asyncio.TimeoutError:
            results.refuse(
                node, f"its cached result was not read within {results.store.read_timeout:g} s"
            )
            return None
        except Exception as exc:  # the store's file system, in a way of its own
            results.refuse(node, f"its cached result cannot be read: {describe(exc)}")
            return None
        results.cached(node, entry)
        return Hit(value, entry.run_id)

    async def _kept(self, store: ResultStore, fingerprint: str) -> bool:
        """Whether the store's cache has an entry for ``fingerprint`` (false when unsure)."""
        try:
            return bool(await _off_loop(store, lambda: store.cache_entry(fingerprint)))
        except Exception:
            return False

    async def _ask(
        self, node: Node, policy: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Hit | None:
        lazy = node.lazy
        try:
            value = await self._call(
                policy.check, lazy.task_id, _inputs(lazy.task.fn, args, kwargs)
            )
        except Exception as exc:
            self.stats.results_refused += 1
            _log.warning(
                "task %s (%s) runs: its cache policy's check failed: %s",
                lazy.name,
                lazy.task_id,
                describe(exc),
            )
            return None
        if value is None:
            return None
        self.stats.results_cached += 1
        return Hit(value, None)

    def not_kept(self, node: Node) -> str | None:
        """Why a result a policy gave ``node`` is not kept (``None``: no results are kept)."""
        if self.results is None:
            return None
        return self.results.from_policy(node, node_cache(node.lazy).policy)

    async def save(
        self, node: Node, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        """Tell ``node``'s cache policy its result (a failing ``save`` is logged: the task has
        its result all the same)."""
        lazy = node.lazy
        policy = node_cache(lazy).policy
        assert policy is not None
        try:
            await self._call(policy.save, lazy.task_id, _inputs(lazy.task.fn, args, kwargs), output)
        except Exception as exc:
            _log.warning(
                "task %s (%s): its cache policy's save failed: %s",
                lazy.name,
                lazy.task_id,
                describe(exc),
            )

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        """A policy's coroutine method awaited, a plain one called in a thread."""
        if inspect.iscoroutinefunction(method):
            return await method(*args)
        return await asyncio.to_thread(method, *args)
