"""``Router``: one of several branches, chosen by a value known only when the run gets there."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

from cascade.interfaces import CascadeError

__all__ = ["NOT_ROUTED", "RouteMissing", "Router"]

T = TypeVar("T")

NOT_ROUTED = "not routed"
"""A task of a route its :class:`Router` did not choose: its ``SKIPPED`` event's error."""


class RouteMissing(CascadeError, LookupError, ValueError):
    """A router's selector is no key of its routes; the task that takes the router fails so.
    A ``LookupError``, and a ``ValueError`` as the existing Cascade engine raises."""


class Router(Generic[T]):
    """The result of the route ``selector`` names: ``routes[selector]``.

    Put it where a task takes a value. ``selector`` is a lazy result, a
    :class:`~cascade.runtime.Param` or a value; ``routes`` maps each key to a lazy result (or a
    value). The task waits for the selector and the chosen route; the tasks that only the other
    routes need never run, each ended ``SKIPPED`` with ``not routed``. A selector that is no
    key of ``routes`` fails the task that takes the router (a ``Param`` one fails the run
    before it starts, naming the parameter).
    """

    __slots__ = ("routes", "selector")

    def __init__(self, selector: Any, routes: Mapping[Any, Any]) -> None:
        if not isinstance(routes, Mapping) or not routes:
            raise ValueError("a Router needs routes: a mapping of each key to its branch")
        self.selector = selector
        self.routes: dict[Hashable, Any] = dict(routes)

    def route(self, key: Any) -> Any:
        """The branch ``key`` names; :class:`RouteMissing` naming the keys when none does."""
        try:
            return self.routes[key]
        except (KeyError, TypeError):
            keys = ", ".join(repr(k) for k in self.routes)
            raise RouteMissing(
                f"no matching route found for {key!r} (the routes: {keys})"
            ) from None

    def __repr__(self) -> str:
        return f"<Router {', '.join(repr(k) for k in self.routes)}>"
