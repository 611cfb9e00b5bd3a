"""Which of the broker's nodes is tried next, and ``connect(require=True)``'s rounds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cascade.interfaces import ConnectError

from ._backoff import Backoff
from ._hosts import Node, node_name
from ._link import ConnectRefusedError

__all__ = ["Rotation", "first_answer"]

_T = TypeVar("_T")


class Rotation:
    """The broker's nodes in the order they are tried, and the one tried or served now.

    The first attempt goes to the first node; a failed attempt or a lost
    connection moves on to the next (the last node is followed by the first).
    A round ends when every node failed in a row: the supervisor waits its
    backoff then. With one node every attempt is to it and every failure ends a round.
    """

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.nodes = nodes
        self._index = 0
        self._failed = 0  # failed attempts in a row since the last round ended
        self._served: Node | None = None  # the node of the last connection served

    @property
    def current(self) -> Node:
        """The node being tried or served."""
        return self.nodes[self._index]

    @property
    def after_current(self) -> Node:
        """The node tried first when the current one's connection goes."""
        return self.nodes[(self._index + 1) % len(self.nodes)]

    @property
    def where(self) -> str:
        """The current node as ``host:port``, for messages."""
        return node_name(self.current)

    @property
    def served_last(self) -> str:
        """The node of the last connection served as ``host:port`` (the current one before any)."""
        return node_name(self._served or self.current)

    def restart(self) -> None:
        """A new start of the connector: from the first node, no move remembered."""
        self._index, self._failed, self._served = 0, 0, None

    def choose(self, index: int) -> None:
        """Make node ``index`` the current one."""
        self._index = index

    def failed(self) -> bool:
        """An attempt to the current node failed: move on; whether the round goes on."""
        self._failed += 1
        self._index = (self._index + 1) % len(self.nodes)
        if self._failed < len(self.nodes):
            return True
        self._failed = 0
        return False

    def lost(self) -> None:
        """The connection to the current node went: the next node is tried first."""
        self._failed = 0
        self._index = (self._index + 1) % len(self.nodes)

    def serve(self) -> Node | None:
        """The current node's connection is served: the node it moved from, if it moved."""
        moved_from = self._served if self._served not in (None, self.current) else None
        self._served = self.current
        return moved_from


_FOR_GOOD = ("TLS failure", "unknown host", "not a host name")
"""Reasons (their beginnings, from ``_paho/_reasons.py``) that trying again cannot change."""


def _for_good(exc: ConnectError) -> bool:
    """Whether ``exc`` is a failure no retry fixes: a CONNACK refusal (credentials,
    authorisation), a TLS failure, a host name that does not resolve."""
    return isinstance(exc, ConnectRefusedError) or exc.reason.startswith(_FOR_GOOD)


async def first_answer(
    rotation: Rotation,
    attempt: Callable[[float | None], Awaitable[_T]],
    deadline: float,
    backoff: Backoff,
    connect_timeout: float,
) -> _T:
    """``connect(require=True)``'s attempt: each node in turn until ``deadline``.

    ``attempt(bound)`` tries the current node for at most ``bound`` seconds
    (``None``: the connect timeout). Rounds of attempts, each bounded by its
    share of the time left in its round (one node: all of it), the rounds apart
    by the backoff, until one answers: a node that closed the connection during
    the handshake, refused it (not listening) or said it is unavailable may be
    back a moment later (a cluster's node restarting, a failover under way).
    Else :class:`ConnectError`: with one node its last failure (and how many
    attempts there were), with several each node's. A round in which every node
    failed for good (a CONNACK refusal for credentials or authorisation, a TLS
    failure, an unknown host) is the last: retrying would not help.
    """
    nodes = rotation.nodes
    loop = asyncio.get_running_loop()
    failures: dict[Node, str] = {}
    last: ConnectError | None = None
    attempts = 0
    while True:
        all_refused = True
        for i in range(len(nodes)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            rotation.choose(i)
            share = max(remaining / (len(nodes) - i), min(remaining, 0.5))
            attempts += 1
            try:
                return await attempt(None if attempts == 1 and len(nodes) == 1 else share)
            except ConnectError as exc:
                last = exc
                failures[nodes[i]] = exc.reason
                all_refused = all_refused and _for_good(exc)
        remaining = deadline - loop.time()
        if all_refused or remaining <= 0:
            if len(nodes) == 1 and last is not None:
                if attempts == 1:
                    raise last
                why = f"{last.reason} ({attempts} attempts within {connect_timeout:g} s)"
                raise type(last)(*nodes[0], why) from last
            details = "; ".join(f"{node_name(n)}: {why}" for n, why in failures.items())
            reason = f"none of its {len(nodes)} nodes answered within {connect_timeout:g} s"
            raise ConnectError(*nodes[0], f"{reason} ({details})")
        await asyncio.sleep(min(backoff.next_delay(), remaining))
