"""Loops as the Cascade engine writes them: a task returns a :class:`Jump`, and the run goes on
at the task its :func:`select_jump` names for the jump's key, with the jump's data as that
task's new input.

``cs.bind(call, cs.select_jump({...}))`` binds a task's call to its routes. When the call's
attempt returns ``Jump(key, data)``, the call (the loop) does not end: the run makes the next
iteration, a task of its own (``<task_id>@2``, ``@3`` ...) that calls the route's task with
its arguments, ``data`` in place of those it names. A route of ``None`` ends the loop: its
result is ``data``. The loop's result is that of its last iteration, and what needs the loop
waits for it. Every iteration is a task like any other (its name is the route's task's):
shown, constrained and paused by that name, retried, held.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from cascade.interfaces import CascadeError

from ._task import LazyResult

__all__ = ["Jump", "JumpError", "JumpSelector", "bind", "jump_call", "select_jump"]


class JumpError(CascadeError, LookupError, ValueError):
    """A jump the run cannot follow: a task returned a :class:`Jump` but no
    :func:`select_jump` is bound to its call (:func:`bind`), the jump's key is none of its
    routes', or the route's task takes a value nothing has given yet. The task that returned
    the jump fails so (a ``ValueError`` and a ``LookupError``, as an unknown route is)."""


class Jump:
    """What a task returns to go on elsewhere: ``target_key`` names the route of the
    :func:`select_jump` bound to its call; ``data`` is the next task's input (a dict: its
    arguments by name, or by position as ``"0"``, ``"1"``...; ``None``: its own arguments;
    anything else: its first argument), or the loop's result where the route is ``None``."""

    __slots__ = ("data", "target_key")

    def __init__(self, target_key: Any, data: Any = None) -> None:
        self.target_key = target_key
        self.data = data

    def __eq__(self, other: object) -> bool:
        if type(other) is not Jump:
            return NotImplemented
        return (self.target_key, self.data) == (other.target_key, other.data)

    __hash__ = None  # type: ignore[assignment]  # its data may be a dict

    def __repr__(self) -> str:
        return f"Jump({self.target_key!r}, {self.data!r})"


class JumpSelector:
    """The routes of a loop: each key a :class:`Jump` may name, to the task call the run goes on
    at (``None``: the loop ends). Made by :func:`select_jump`."""

    __slots__ = ("routes",)

    def __init__(self, routes: Mapping[Any, LazyResult[Any] | None]) -> None:
        bad = [key for key, route in routes.items() if not _is_route(route)]
        if bad:
            raise JumpError(
                f"a jump's route is a task call (a lazy result) or None, not "
                f"{type(routes[bad[0]]).__name__} (route {bad[0]!r})"
            )
        self.routes: dict[Any, LazyResult[Any] | None] = dict(routes)

    def route(self, key: Any) -> LazyResult[Any] | None:
        """The call the run goes on at for ``key`` (``None``: the loop ends);
        :class:`JumpError` for a key that is no route's."""
        try:
            return self.routes[key]
        except (KeyError, TypeError):
            keys = ", ".join(repr(k) for k in self.routes)
            raise JumpError(f"no route for jump key {key!r} (routes: {keys})") from None

    def __repr__(self) -> str:
        return f"select_jump({self.routes!r})"


def _is_route(route: object) -> bool:
    return route is None or isinstance(route, LazyResult)


def select_jump(routes: Mapping[Any, LazyResult[Any] | None]) -> JumpSelector:
    """The routes of a loop, for :func:`bind`: each key a :class:`Jump` may name, to a task
    call (the run goes on there) or ``None`` (the loop ends with the jump's data)."""
    return JumpSelector(routes)


def bind(source: LazyResult[Any], selector: JumpSelector) -> LazyResult[Any]:
    """Bind ``selector`` to the call ``source``: a :class:`Jump` it returns goes where the
    selector's route for its key says. What the routes' calls take from other tasks is part
    of the graph, computed before ``source`` runs. A second bind replaces the first. Returns
    ``source``."""
    if not isinstance(source, LazyResult):
        raise JumpError(f"bind takes a task call (a lazy result), not {type(source).__name__}")
    if not isinstance(selector, JumpSelector):
        raise JumpError(f"bind takes a select_jump(...), not {type(selector).__name__}")
    source.jumps = selector
    return source


def jump_call(route: LazyResult[Any], data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``route``'s arguments with ``data`` given in their place, as :class:`Jump` says."""
    args, kwargs = list(route.args), dict(route.kwargs)
    if data is None:
        return tuple(args), kwargs
    names = _positional_names(route)
    if not isinstance(data, dict):
        if args:
            args[0] = data
        elif names and names[0] in kwargs:
            kwargs[names[0]] = data
        else:
            args.append(data)
        return tuple(args), kwargs
    for key, value in data.items():
        index = int(key) if isinstance(key, str) and key.isdigit() else None
        if index is None and key in names and names.index(key) < len(args):
            index = names.index(key)
        if index is None:
            kwargs[str(key)] = value
        elif index < len(args):
            args[index] = value
        elif index == len(args):
            args.append(value)
        else:
            raise JumpError(
                f"a jump to {route.name} gives its argument {index}, but it has {len(args)} "
                "positional arguments: give them in order"
            )
    return tuple(args), kwargs


def _positional_names(route: LazyResult[Any]) -> list[str]:
    try:
        parameters = inspect.signature(route.task.fn).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds]
