"""Each person's fair share of the dashboard: live streams and history readers.

Who a request is counts, not only whether it carries a token: a budget is kept per
:class:`Claimant`, the identity the request resolves to (a signed-in person, an API token's
or a ``--token``'s holder), or for a request nobody vouches for, its client address. A
person's excess is refused to that person (429 with ``Retry-After``), never taken out of
anyone else's share, and those who steer come first:

- **streams**: at most :data:`MAX_STREAMS_PER_PERSON` open per person (per address
  without one: :data:`MAX_STREAMS_PER_CLIENT`); :data:`MAX_STREAMS` in all for everyone,
  and :data:`MAX_HOLDER_STREAMS` more kept for operators and admins (in a dashboard without
  roles, the token's holders), who take the others' pool when their own is full. No open
  stream is ever ended to make room.
- **history reads**: at most :data:`READS_PER_PERSON` under way (running or waiting) per
  person; :data:`HISTORY_READERS` workers for everyone and :data:`RESERVED_READERS` more
  for operators and admins, whose waiting requests also go first when a worker frees;
  within each, people take turns (round robin), so one person's loop waits behind everyone
  else's single request. At most :data:`READS_WAITING` wait in each of the two classes;
  beyond, 503 (the dashboard as a whole is busy).
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from starlette.types import Scope

from cascade.control.access import Role

from .._guard import Refused

if TYPE_CHECKING:
    from cascade.control.access import Access

__all__ = [
    "HISTORY_READERS",
    "MAX_HOLDER_STREAMS",
    "MAX_STREAMS",
    "MAX_STREAMS_PER_CLIENT",
    "MAX_STREAMS_PER_PERSON",
    "READS_PER_PERSON",
    "READS_WAITING",
    "RESERVED_READERS",
    "RETRY_AFTER",
    "Claimant",
    "HistoryReaders",
    "Refused",
    "Slot",
    "StreamSlots",
    "claimant",
]

#: Streams open at once in the pool everyone shares, and per client address there (requests
#: nobody vouches for: a read-only dashboard's readers).
MAX_STREAMS = 100
MAX_STREAMS_PER_CLIENT = 8
#: Streams of one person (a signed-in person, an API token's or a ``--token``'s holder).
MAX_STREAMS_PER_PERSON = 8
#: Streams kept for operators and admins (without roles: the token's holders) beside those.
MAX_HOLDER_STREAMS = 16
#: History queries running at once for everyone, and beside them for operators and admins.
HISTORY_READERS = 3
RESERVED_READERS = 1
#: History requests of one person under way (running or waiting); more get 429.
READS_PER_PERSON = 4
#: History requests waiting for a worker, in each class (operators and admins, the others).
READS_WAITING = 16
RETRY_AFTER = "2"
"""Seconds a refused stream or history request is told to wait."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Claimant:
    """Who a request counts as: ``key`` names the budget it takes from (``via:name`` of an
    identity, ``address:IP`` of a request nobody vouches for); ``first``: an operator or
    admin (without roles: a token's holder), served first; ``named``: someone vouched for."""

    key: str
    first: bool = False
    named: bool = False

    @property
    def address(self) -> str | None:
        """The client address of a request nobody vouches for."""
        return None if self.named else self.key.partition(":")[2]


def claimant(
    scope: Scope, access: Access | None, holder: Callable[[Scope], str | None]
) -> Claimant:
    """Who the request of ``scope`` counts as: in a team's dashboard the person of its
    ``access`` (first when an operator or admin); else the holder of the token it carries
    (``holder``: their name, first), else its client address."""
    if access is not None:
        identity = access.identity
        first = (access.role or 0) >= Role.OPERATOR
        return Claimant(f"{identity.via}:{identity.name}", first=first, named=True)
    name = holder(scope)
    if name is not None:
        return Claimant(f"token:{name}", first=True, named=True)
    client = scope.get("client")
    return Claimant(f"address:{client[0] if client else 'unknown'}")


# -- streams -------------------------------------------------------------------------------


@dataclass(eq=False)
class Slot:
    """One open stream, of ``who``; ``reserved``: in the operators' pool. Setting ``ended``
    ends the stream (the budget never does: a person's excess is refused instead)."""

    who: Claimant
    reserved: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class StreamSlots:
    """Who may open a stream: ``per_person`` streams per person (``per_client`` per address
    for those nobody vouches for), ``total`` in all, and ``holders`` more for those served
    first. Refusals are :class:`Refused`: 429 for one's own excess, 503 when all is full."""

    def __init__(
        self,
        total: int = MAX_STREAMS,
        per_client: int = MAX_STREAMS_PER_CLIENT,
        holders: int = MAX_HOLDER_STREAMS,
        per_person: int = MAX_STREAMS_PER_PERSON,
    ) -> None:
        self.total = total
        self.per_client = per_client
        self.holders = holders
        self.per_person = per_person
        self.open = 0  # in the pool everyone shares
        self.reserved = 0  # in the operators' pool
        self.of: Counter[str] = Counter()
        """Streams open per claimant's key."""

    def take(self, who: Claimant) -> Slot | Refused:
        """A slot for a new stream of ``who``, or why there is none."""
        if who.named and self.of[who.key] >= self.per_person:
            return Refused(
                429, f"too many live streams of yours (at most {self.per_person}): close a page"
            )
        if not who.named and self.of[who.key] >= self.per_client:
            return Refused(
                429, f"too many live streams from {who.address} (at most {self.per_client})"
            )
        if who.first and self.reserved < self.holders:
            self.reserved += 1
            slot = Slot(who, reserved=True)
        elif self.open < self.total:
            self.open += 1
            slot = Slot(who)
        else:
            return Refused(503, f"too many live streams open (at most {self.total})")
        self.of[who.key] += 1
        return slot

    def give_back(self, slot: Slot) -> None:
        """The stream of ``slot`` ended."""
        if slot.reserved:
            self.reserved -= 1
        else:
            self.open -= 1
        self.of[slot.who.key] -= 1
        if not self.of[slot.who.key]:
            del self.of[slot.who.key]


# -- history readers -----------------------------------------------------------------------


class HistoryReaders:
    """The worker threads history queries run on, shared fairly (see the module's doc):
    ``workers`` for everyone, ``reserved`` more for those served first, ``per_person``
    requests under way per person, ``waiting`` waiting in each class (each, by default, the
    module's constant of the moment)."""

    def __init__(
        self,
        workers: int | None = None,
        reserved: int | None = None,
        per_person: int | None = None,
        waiting: int | None = None,
    ) -> None:
        self.workers = HISTORY_READERS if workers is None else workers
        self.reserved = RESERVED_READERS if reserved is None else reserved
        self.per_person = READS_PER_PERSON if per_person is None else per_person
        self.waiting = READS_WAITING if waiting is None else waiting
        self.executor = ThreadPoolExecutor(
            self.workers + self.reserved, thread_name_prefix="history"
        )
        self.running = {True: 0, False: 0}  # by class: served first or not
        self.under_way: Counter[str] = Counter()
        # per class, each person's waiting turns, in the order people take turns
        self._turns: dict[bool, OrderedDict[str, deque[asyncio.Future[None]]]] = {
            True: OrderedDict(),
            False: OrderedDict(),
        }
        self._waiting = {True: 0, False: 0}

    def _may_start(self, first: bool) -> bool:
        running = self.running[True] + self.running[False]
        if first:
            return running < self.workers + self.reserved
        return running < self.workers + self.reserved and self.running[False] < self.workers

    async def run(self, who: Claimant, job: Callable[[], _T]) -> _T | Refused:
        """``job()`` on a worker once it is ``who``'s turn, or why not (:class:`Refused`).

        A job is counted until it is done, not until its request goes: a query still running
        holds its worker."""
        if self.under_way[who.key] >= self.per_person:
            return Refused(
                429,
                f"too many history requests of yours at once "
                f"(at most {self.per_person}): wait for one",
            )
        loop = asyncio.get_running_loop()
        if self._waiting[who.first] == 0 and self._may_start(who.first):
            self.running[who.first] += 1
        elif self._waiting[who.first] >= self.waiting:
            return Refused(503, "too many history requests at once: try again")
        else:
            await self._turn(who, loop)
        self.under_way[who.key] += 1
        future = self.executor.submit(job)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._done, who))
        return await asyncio.wrap_future(future)

    async def _turn(self, who: Claimant, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for ``who``'s turn; the worker is counted as running once it comes."""
        turn: asyncio.Future[None] = loop.create_future()
        self._turns[who.first].setdefault(who.key, deque()).append(turn)
        self._waiting[who.first] += 1
        self.under_way[who.key] += 1  # waiting counts against one's share too
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release(who)  # its turn came as its request went: pass it on
            else:
                self._forget(who, turn)
            raise
        finally:
            self._drop(who.key)

    def _forget(self, who: Claimant, turn: asyncio.Future[None]) -> None:
        turns = self._turns[who.first].get(who.key)
        if turns is not None and turn in turns:
            turns.remove(turn)
            self._waiting[who.first] -= 1
            if not turns:
                del self._turns[who.first][who.key]

    def _drop(self, key: str) -> None:
        self.under_way[key] -= 1
        if not self.under_way[key]:
            del self.under_way[key]

    def _done(self, who: Claimant) -> None:
        self._drop(who.key)
        self._release(who)

    def _release(self, who: Claimant) -> None:
        """A worker of ``who``'s class is free: give it to the next turn, first class first."""
        self.running[who.first] -= 1
        for first in (True, False):
            people = self._turns[first]
            while people and self._may_start(first):
                key, turns = next(iter(people.items()))
                turn = turns.popleft()
                del people[key]
                if turns:
                    people[key] = turns  # to the back: the others' turns come first
                self._waiting[first] -= 1
                self.running[first] += 1
                turn.set_result(None)
