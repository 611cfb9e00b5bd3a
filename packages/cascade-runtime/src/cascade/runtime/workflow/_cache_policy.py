"""``with_cache``: what a task's cache is (the results store by fingerprint, or a policy of the
user's), and the policy the existing Cascade engine documents, :class:`FileExistenceCache`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from .._errors import CacheError

__all__ = ["Cache", "CachePolicy", "FileExistenceCache", "cache_of", "node_cache"]


@runtime_checkable
class CachePolicy(Protocol):
    """A cache of the user's for ``with_cache(policy)``, as the existing Cascade engine has it.

    ``check(task_id, inputs)``, before the task's first attempt: its result if the cache has
    one (the task then does not run), else ``None``. ``save(task_id, inputs, output)``, after
    an attempt that returned ``output``. ``task_id`` is the task's id in the run
    (``report-3``), ``inputs`` its arguments by parameter name, resolved. Each may be a plain
    method (called in the run's threads, never on its event loop) or a coroutine (awaited on
    the loop: it must not block)."""

    def check(self, task_id: str, inputs: dict[str, Any]) -> Any:
        """The cached result of this call, or ``None``."""

    def save(self, task_id: str, inputs: dict[str, Any], output: Any) -> object:
        """Keep ``output``, the result of this call."""


class FileExistenceCache:
    """A task is cached when a file exists: ``check`` gives its path (the task's result
    then), or ``None`` while it does not exist; ``save`` does nothing (the task makes the
    file). ``target_path``: the path, or a function of the task's inputs giving it."""

    def __init__(self, target_path: str | os.PathLike[str] | Callable[[dict[str, Any]], str]):
        self.target_path = target_path

    def __repr__(self) -> str:
        return f"FileExistenceCache({self.target_path!r})"

    def path(self, inputs: dict[str, Any]) -> str:
        """The file that says a call with ``inputs`` is cached."""
        target = self.target_path
        return os.fspath(target(inputs) if callable(target) else target)

    def check(self, task_id: str, inputs: dict[str, Any]) -> str | None:
        """The file's path if it exists, else ``None``."""
        path = self.path(inputs)
        return path if os.path.exists(path) else None

    def save(self, task_id: str, inputs: dict[str, Any], output: Any) -> None:
        """Nothing: the task makes the file."""


@dataclass(frozen=True, slots=True)
class Cache:
    """A task's ``with_cache``: its ``policy`` (``None``: the engine's results store, by the
    task's fingerprint) and, for the store, ``expire``: the oldest result taken, in seconds
    (``None``: any)."""

    policy: CachePolicy | None = None
    expire: float | None = None


def cache_of(policy: object, expire: object) -> Cache:
    """``with_cache(policy, expire=...)``'s :class:`Cache`; :class:`CacheError` naming what is
    wrong: a policy without ``check`` and ``save``, an ``expire`` that is not seconds of 0 or
    more (a number or a ``timedelta``), an ``expire`` with a policy (a policy keeps its own
    time)."""
    if policy is not None and not (
        callable(getattr(policy, "check", None)) and callable(getattr(policy, "save", None))
    ):
        raise CacheError(
            f"with_cache's policy must have check(task_id, inputs) and save(task_id, inputs, "
            f"output) (a CachePolicy), not {type(policy).__name__}"
        )
    seconds: float | None
    if expire is None:
        seconds = None
    elif isinstance(expire, timedelta):
        seconds = expire.total_seconds()
    elif isinstance(expire, (int, float)) and not isinstance(expire, bool):
        seconds = float(expire)
    else:
        raise CacheError(
            f"with_cache's expire must be seconds or a timedelta, not {type(expire).__name__}"
        )
    if seconds is not None and not 0 <= seconds < math.inf:
        raise CacheError(f"with_cache's expire must be finite and >= 0, not {expire!r}")
    if seconds is not None and policy is not None:
        raise CacheError("with_cache's expire goes with the results store (no policy)")
    return Cache(policy, seconds)  # type: ignore[arg-type]


def node_cache(lazy: Any) -> Cache:
    """The :class:`Cache` of a lazy result whose task has one (a node of ``graph.cached``)."""
    cache: Cache | None = lazy.task.cache
    assert cache is not None
    return cache
