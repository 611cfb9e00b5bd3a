"""An engine's system resources (``Engine(system_resources=...)``): what each has, what the
running attempts hold of it, the line of tasks waiting for it, and the holds a waiting task
names.

One :class:`Capacity` serves every run of an engine (a GPU is the machine's, whichever run
asks for it). Its runs ask on their event loop; a thread that ends after its attempt was
given up on gives its amounts back from that thread, so the ledger takes a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import numbers
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cascade.interfaces import Hold
from cascade.interfaces.wire import MAX_HOLDERS, MAX_NUMBER

from ..workflow._amounts import CapacityError, amount_of

__all__ = ["Capacity", "Grant", "Ticket"]

_SLACK = 1e-9  # relative: amounts that add up to the capacity in floats still fit


def _number(value: float) -> float:
    """``value`` as a hold says it: a whole number as an int (``1``, not ``1.0``)."""
    return int(value) if value.is_integer() else value


class Grant:
    """What one attempt holds: its amounts, given back once (:meth:`release`) when the attempt
    ends, or when its thread does for a thread the attempt gave up on."""

    __slots__ = ("amounts", "capacity", "returned", "task_id")

    def __init__(self, capacity: Capacity, amounts: dict[str, float], task_id: str) -> None:
        self.capacity = capacity
        self.amounts = amounts
        self.task_id = task_id
        self.returned = False

    def release(self, *_: object) -> None:
        """Give the amounts back (again: nothing). From any thread; takes a finished
        ``concurrent.futures.Future`` as a done callback does."""
        self.capacity.give_back(self)


class Ticket:
    """A place in line: a task that does not fit keeps it until it starts (or the broker holds
    it, or its run ends), and no task that came later takes what it waits for."""

    __slots__ = ("amounts", "task_id")

    def __init__(self, amounts: dict[str, float], task_id: str) -> None:
        self.amounts = amounts
        self.task_id = task_id


class Capacity:
    """The system resources of an engine, and who holds what of them.

    ``resources``: each resource's capacity by name, a number above 0 (at most
    :data:`~cascade.interfaces.wire.MAX_NUMBER`); anything else raises :class:`CapacityError`
    naming it. No resources: every request for one fails.

    The rule for who goes first: a task starts when every amount it asks fits in what is
    free and no task waits for one of those resources since earlier. A task that does not
    fit takes a place in line (:meth:`queue`), so a large request is never starved by small
    ones that keep fitting: the resources it waits for go to it as they come free.
    """

    def __init__(self, resources: Mapping[str, object] | None = None) -> None:
        if resources is not None and not isinstance(resources, Mapping):
            raise CapacityError(
                f"system_resources must be a mapping of resource names to capacities, "
                f"not {type(resources).__name__}"
            )
        total: dict[str, float] = {}
        for name, value in (resources or {}).items():
            if not isinstance(name, str) or not name:
                raise CapacityError(f"system_resources: a resource's name is text, not {name!r}")
            capacity = math.nan
            if not isinstance(value, bool) and isinstance(value, numbers.Real):
                capacity = float(value)
            if not 0 < capacity <= MAX_NUMBER:
                raise CapacityError(
                    f"system_resources: the capacity of {name} must be a number above 0 "
                    f"(at most {MAX_NUMBER:g}), not {value!r}"
                )
            total[name] = capacity
        self.total = total
        self._in_use = dict.fromkeys(total, 0.0)
        self._grants: dict[Grant, None] = {}  # held now, in the order taken
        self._line: dict[Ticket, None] = {}  # waiting, in the order they came
        self._first: dict[str, Ticket] = {}  # by resource: the ticket that waits for it first
        self._lock = threading.Lock()
        self._listeners: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}
        self._keys = itertools.count()

    def asked(self, amounts: Iterable[tuple[str, Any]]) -> dict[str, float]:
        """What a task asks, its amounts known (resolved): each checked (a number of at least
        0, of a resource the engine has, at most its capacity), those of 0 left out.
        :class:`CapacityError` says what cannot be had."""
        asked: dict[str, float] = {}
        for resource, value in amounts:
            amount = amount_of(resource, value)
            capacity = self.total.get(resource)
            if capacity is None:
                has = ", ".join(self.total) or "none"
                raise CapacityError(
                    f"the task asks for {amount:g} {resource}, a resource this engine has no "
                    f"capacity for (its system_resources: {has})"
                )
            if amount > capacity * (1 + _SLACK):
                raise CapacityError(
                    f"the task asks for {amount:g} {resource}, more than this engine has "
                    f"({capacity:g}: its system_resources)"
                )
            if amount:
                asked[resource] = asked.get(resource, 0.0) + amount
        return asked

    def fits(self, asked: Mapping[str, float], ticket: Ticket | None) -> bool:
        """Whether ``asked`` fits in what is free now, with no other ticket than ``ticket`` (the
        asker's own place in line, if it has one) waiting for one of its resources."""
        total, in_use, first = self.total, self._in_use, self._first
        with self._lock:
            for resource, amount in asked.items():
                if in_use[resource] + amount > total[resource] * (1 + _SLACK):
                    return False
                waiting = first.get(resource)
                if waiting is not None and waiting is not ticket:
                    return False
        return True

    def queue(self, asked: Mapping[str, float], task_id: str) -> Ticket:
        """A place in line for ``task_id``, which asks ``asked`` and does not fit."""
        ticket = Ticket(dict(asked), task_id)
        with self._lock:
            self._line[ticket] = None
            for resource in asked:
                self._first.setdefault(resource, ticket)
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """``ticket``'s task no longer waits in line: it started, the broker holds it, or its
        run ended."""
        with self._lock:
            if ticket not in self._line:
                return
            del self._line[ticket]
            self._unfirst(ticket)
        self._changed()

    def take(self, asked: Mapping[str, float], task_id: str, ticket: Ticket | None) -> Grant:
        """Hold ``asked`` for an attempt of ``task_id`` (it fits: :meth:`fits`), giving up
        ``ticket``, its place in line."""
        grant = Grant(self, dict(asked), task_id)
        moved = False  # the line moved: the next in it may fit what this one left
        with self._lock:
            if ticket is not None and ticket in self._line:
                del self._line[ticket]
                self._unfirst(ticket)
                moved = bool(self._line)
            in_use = self._in_use
            for resource, amount in asked.items():
                in_use[resource] += amount
            self._grants[grant] = None
        if moved:
            self._changed()
        return grant

    def give_back(self, grant: Grant) -> None:
        """What ``grant`` held is free again (once; from any thread)."""
        with self._lock:
            if grant.returned:
                return
            grant.returned = True
            del self._grants[grant]
            in_use = self._in_use
            for resource, amount in grant.amounts.items():
                in_use[resource] -= amount
            if not self._grants:  # nothing held: no float drift left behind
                for resource in in_use:
                    in_use[resource] = 0.0
            waiting = bool(self._line)
        if waiting:
            self._changed()

    def _unfirst(self, ticket: Ticket) -> None:
        """``ticket`` left the line (under the lock): who waits first for its resources now."""
        first = self._first
        for resource in ticket.amounts:
            if first.get(resource) is ticket:
                nxt = next((t for t in self._line if resource in t.amounts), None)
                if nxt is None:
                    del first[resource]
                else:
                    first[resource] = nxt

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on the running event loop whenever what is free or the line
        changes while a task waits in line; returns the function that stops it."""
        key = next(self._keys)
        loop = asyncio.get_running_loop()
        with self._lock:
            self._listeners[key] = (loop, callback)

        def stop() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return stop

    def _changed(self) -> None:
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a thread's end: each loop is told through its own queue
            here = None
        with self._lock:
            listeners = list(self._listeners.values())
        for loop, callback in listeners:
            if loop is here:
                callback()
            else:
                with contextlib.suppress(RuntimeError):  # a closed loop: its run is over
                    loop.call_soon_threadsafe(callback)

    def holds(self, asked: Mapping[str, float], ticket: Ticket | None) -> list[Hold]:
        """Why ``asked`` does not fit now: a ``resource`` hold for each of its resources with
        too little free (who holds it), or with another task in line for it first (which)."""
        found: list[Hold] = []
        with self._lock:
            for resource, amount in asked.items():
                in_use = self._in_use[resource]
                capacity = self.total[resource]
                waiting = self._first.get(resource)
                short = in_use + amount > capacity * (1 + _SLACK)
                if not short and (waiting is None or waiting is ticket):
                    continue
                users: dict[str, float] = {}
                for grant in self._grants:
                    held = grant.amounts.get(resource)
                    if held:
                        users[grant.task_id] = users.get(grant.task_id, 0.0) + held
                most = heapq.nlargest(MAX_HOLDERS, users.items(), key=lambda item: item[1])
                found.append(
                    Hold(
                        type="resource",
                        resource=resource,
                        amount=_number(amount),
                        in_use=_number(max(0.0, in_use)),
                        capacity=_number(capacity),
                        users={task_id: _number(held) for task_id, held in most} or None,
                        ahead=None if short or waiting is None else waiting.task_id,
                    )
                )
        return found

    def in_use(self) -> dict[str, float]:
        """How much of each resource the attempts running (and threads given up on) hold now."""
        with self._lock:
            return {resource: max(0.0, amount) for resource, amount in self._in_use.items()}
