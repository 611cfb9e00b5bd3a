"""A value as a run sees it: its lazy results replaced by their results and its parameters by
their values (apart from :mod:`._run_state`, so that what the graph's nodes hold, their
policies, may resolve without importing the graph)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._param import Param
from ._router import Router
from ._task import LazyResult, Unmapped

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["Resolving", "resolve"]


class Resolving(Protocol):
    """What :func:`resolve` reads of a run's state (:class:`~._run_state.RunState`)."""

    by_lazy: dict[int, Node]
    values: dict[str, Any]
    result: list[Any]


def resolve(value: Any, state: Resolving) -> Any:
    """``value`` with every lazy result in it replaced by its node's result in the run
    ``state`` is of, and every :class:`Param` by its bound value."""
    if isinstance(value, LazyResult):
        return state.result[state.by_lazy[id(value)].index]
    if isinstance(value, Param):
        return state.values[value.name]
    if isinstance(value, Router):
        return resolve(value.route(resolve(value.selector, state)), state)
    if isinstance(value, list):
        return [resolve(v, state) for v in value]
    if isinstance(value, tuple):
        items = [resolve(v, state) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: resolve(v, state) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(resolve(v, state) for v in value)
    if isinstance(value, Unmapped):
        return Unmapped(resolve(value.value, state))
    return value
