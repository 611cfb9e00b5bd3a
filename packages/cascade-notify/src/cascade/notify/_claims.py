"""``FleetClaims``: which of the notifiers that saw one event posts it, agreed over the broker.

Every notifier of a group reads every message (each needs a run's whole story to say what
failed), so each sees each event. Before posting, a notifier claims the event on
``{prefix}/notify/{group}/claims/{digest of its key}`` (QoS 1, not retained) and listens for
``window`` seconds: of the claims of that round, the lowest member id posts, and says so when
done (``done``). The others wait for that ``done``; if none comes within ``wait_done`` (the
winner died mid-post, or its post is slower than any post can be), they claim a next round
among themselves. The worst cases, bounded: a winner that posted and died before its ``done``
reached the broker costs one more post (the next round's); a claim slower than ``window``
through the broker, or a partition, lets two notifiers post (each one counted a ``late claim``
when the other's claim arrives after it decided).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from cascade.interfaces import Connector, Message, encode_level

__all__ = ["DEFAULT_WINDOW", "FleetClaims", "member_id"]

DEFAULT_WINDOW = 0.5
"""Seconds a claim listens for the others' before the lowest member id is taken to win."""

_REMEMBERED = 10_000  # events whose claims are kept


def member_id() -> str:
    """This process's name among the notifiers: ``host-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class _Event:
    rounds: dict[int, set[str]] = field(default_factory=dict)
    done: str | None = None
    decided: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class FleetClaims:
    """Claims events for one member of ``group`` over ``connector`` (see the module)."""

    def __init__(
        self,
        connector: Connector,
        *,
        group: str = "default",
        member: str | None = None,
        window: float = DEFAULT_WINDOW,
        wait_done: float = 120.0,
    ) -> None:
        self.connector = connector
        self.member = member or member_id()
        self.window = window
        self.wait_done = wait_done
        self.base = f"{connector.topic_prefix}/notify/{encode_level(group)}/claims"
        self.late_claims = 0
        """Claims of another member that came after this one decided an event (a duplicate
        post may have followed)."""
        self.takeovers = 0
        """Rounds claimed anew because a winner said nothing within ``wait_done``."""
        self.rejected = 0
        """Messages on the claims' topics that are no claim."""
        self._events: OrderedDict[str, _Event] = OrderedDict()

    async def start(self) -> None:
        """Listen to the group's claims."""
        await self.connector.subscribe(f"{self.base}/+", self._heard)

    def _topic(self, key: str) -> str:
        return f"{self.base}/{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    def _event(self, key: str) -> _Event:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = _Event()
            if len(self._events) > _REMEMBERED:
                self._events.popitem(last=False)
        return event

    def _heard(self, message: Message) -> None:
        payload: dict[str, Any] = message.payload
        key, by, state = payload.get("key"), payload.get("by"), payload.get("state")
        turn = payload.get("round", 1)
        if not isinstance(key, str) or not isinstance(by, str) or not isinstance(turn, int):
            self.rejected += 1
            return
        if message.topic != self._topic(key):
            self.rejected += 1
            return
        event = self._event(key)
        if state == "done":
            event.done = event.done or by
        elif state == "claim":
            if event.decided and by != self.member and event.done is None:
                self.late_claims += 1
            event.rounds.setdefault(turn, set()).add(by)
        else:
            self.rejected += 1
            return
        event.changed.set()

    async def decide(self, key: str) -> bool:
        """Whether this member posts the event ``key`` (``False``: another member does, or
        did)."""
        event = self._event(key)
        turn = 1
        while event.done is None:
            event.rounds.setdefault(turn, set()).add(self.member)
            await self.connector.publish(
                self._topic(key), {"key": key, "by": self.member, "state": "claim", "round": turn},
                qos=1,
            )  # fmt: skip
            if await self._until(event, self.window):
                break
            if min(event.rounds[turn]) == self.member:
                event.decided = True
                return True
            if not await self._until(event, self.wait_done):
                self.takeovers += 1
                turn += 1
        event.decided = True
        return False

    async def done(self, key: str, outcome: str) -> None:
        """Say the event ``key`` is dealt with (posted, failed for good, or in a digest)."""
        self._event(key).done = self.member
        await self.connector.publish(
            self._topic(key),
            {"key": key, "by": self.member, "state": "done", "outcome": outcome},
            qos=1,
        )

    @staticmethod
    async def _until(event: _Event, seconds: float) -> bool:
        """Wait ``seconds``, or until someone says the event is done; whether it is."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while event.done is None:
            left = end - loop.time()
            if left <= 0:
                return False
            event.changed.clear()
            try:
                await asyncio.wait_for(event.changed.wait(), left)
            except asyncio.TimeoutError:
                return event.done is not None
        return True
