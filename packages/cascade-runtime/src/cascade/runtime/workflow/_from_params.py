"""What a provider does with a value that comes from a param (a served run's params are
anyone's who may start it): a path from one stays under a root the workflow names in code,
and a bound or a root is never a param's.

"Comes from a param" is decided when the graph is built: a :class:`~._param.Param` among a
call's arguments, or a lazy result whose own arguments (again, all the way up) hold one.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from .._errors import CascadeRuntimeError
from ._param import Param
from ._router import Router
from ._task import LazyResult, MappedLazyResult, Task, TaskOptions, Unmapped

__all__ = ["Guard", "GuardedTask", "PathRefused", "comes_from_param", "under_root"]


class PathRefused(CascadeRuntimeError, ValueError):
    """A path a provider was given that it does not take: one from a param without a root
    named in code, or one that leaves its root (absolute, ``..``, a link out)."""


def comes_from_param(value: Any, seen: set[int] | None = None) -> bool:
    """Whether ``value`` is a :class:`Param`, or holds one, or is (or holds) a lazy result
    whose arguments come from one, however far up."""
    seen = set() if seen is None else seen
    if isinstance(value, Param):
        return True
    if isinstance(value, LazyResult):
        if id(value) in seen:
            return False
        seen.add(id(value))
        return comes_from_param((value.args, value.kwargs), seen)
    if isinstance(value, Router):
        return comes_from_param((value.selector, list(value.routes.values())), seen)
    if isinstance(value, Unmapped):
        return comes_from_param(value.value, seen)
    if isinstance(value, dict):
        return any(comes_from_param(v, seen) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(comes_from_param(v, seen) for v in value)
    return False


def under_root(path: Any, root: Any, provider: str) -> Any:
    """``path`` as given without a ``root``; with one, ``root/path``, refused (
    :class:`PathRefused`) when ``path`` is absolute, has a ``..`` or leads out through a
    link."""
    if root is None:
        return path
    relative = PurePath(os.fspath(path))
    if relative.is_absolute() or ".." in relative.parts:
        raise PathRefused(
            f"cs.{provider}: the path {str(relative)[:200]!r} is not one under its root "
            f"{os.fspath(root)!r} (absolute, or with '..')"
        )
    base = Path(root).resolve()
    full = (base / relative).resolve()
    if not full.is_relative_to(base):
        raise PathRefused(
            f"cs.{provider}: the path {str(relative)[:200]!r} leads out of its root "
            f"{os.fspath(root)!r} (through a link)"
        )
    return str(full)


@dataclass(frozen=True)
class Guard:
    """What a provider's call must say in code: ``paths``, its arguments that are paths (one
    from a param needs ``root``); ``in_code``, its options a param may not give (a root, a
    bound)."""

    provider: str
    paths: tuple[str, ...] = ()
    in_code: tuple[str, ...] = ()

    def check(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """:class:`PathRefused` or :class:`ValueError` for a call that breaks the rules."""
        try:
            given = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
        except TypeError:
            return  # the call itself is wrong: its run says so, as for any task
        for name in self.in_code:
            if comes_from_param(given.get(name)):
                raise PathRefused(
                    f"cs.{self.provider}: {name}= comes from a param; a root or a bound is "
                    "named in the workflow's code"
                )
        for name in self.paths:
            if given.get("root") is None and comes_from_param(given.get(name)):
                raise PathRefused(
                    f"cs.{self.provider}: its {name} comes from a param; name the root it "
                    f"must stay under in code: cs.{self.provider}(..., root='data/')"
                )


class GuardedTask(Task[Any, Any]):
    """A provider's task whose calls its :class:`Guard` checks as the graph is built."""

    def __init__(self, fn: Callable[..., Any], guard: Guard, options: TaskOptions) -> None:
        super().__init__(fn, options)
        self.guard = guard

    def __call__(self, *args: Any, **kwargs: Any) -> LazyResult[Any]:
        self.guard.check(self.fn, args, kwargs)
        return super().__call__(*args, **kwargs)

    def map(self, **kwargs: Any) -> MappedLazyResult[Any]:
        self.guard.check(self.fn, (), kwargs)
        return super().map(**kwargs)

    def _copy(self, **changed: Any) -> Task[Any, Any]:
        return GuardedTask(self.fn, self.guard, self.options.replace(**changed))
