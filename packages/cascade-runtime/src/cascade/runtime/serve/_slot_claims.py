"""The slots of a serving engine's schedules (and the events of its triggers) as the fleet
claims them: each server of a schedule publishes a claim of a slot, retained, on the slot's own
topic, and the first claim the broker ordered on that topic is the one every server hears first
(a server that subscribes later gets it retained), so that one server alone fires each slot.
A trigger's event is a slot named by its key (docs/triggers.md), claimed the same way under
``{prefix}/trigger/...``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Literal

from cascade.connector_kit import RateLimitedLogger, bounded
from cascade.interfaces import Connector, InvalidMessageError, Message, SubscriptionHandle
from cascade.interfaces.wire import (
    SlotClaim,
    decode_slot_claim,
    slot_claim_topic,
    slot_claims_filter,
    slot_from_stamp,
    slot_stamp,
    split_slot_claim_topic,
    split_trigger_claim_topic,
    trigger_claim_topic,
    trigger_claims_filter,
)

__all__ = ["CLAIM_WAIT", "CLAIMS_KEPT", "SlotClaims"]

_log = logging.getLogger("cascade.runtime.serve")

CLAIMS_KEPT = 1000
"""Slots of a schedule whose claim is remembered (retained on the broker, and here); the
oldest heard beyond it is cleared."""
CLAIM_WAIT = 60.0
"""Seconds a server waits to hear its own claim back (its broker connection down meanwhile)
before it gives the slot up."""


Slot = datetime | str  # a schedule's slot, or a trigger's event key


class SlotClaims:
    """The claims of the slots of the schedules of ``org_id`` and ``project_id``, heard on
    :func:`~cascade.interfaces.wire.slot_claims_filter`: for each slot, the first claim heard.
    ``kind="trigger"``: those of its triggers' events instead (a slot is an event's key), on
    :func:`~cascade.interfaces.wire.trigger_claims_filter`."""

    def __init__(
        self,
        connector: Connector,
        prefix: str,
        org_id: str,
        project_id: str,
        kind: Literal["schedule", "trigger"] = "schedule",
    ) -> None:
        self._connector = connector
        self._prefix = prefix
        self._org = org_id
        self._project = project_id
        self._kind = kind
        self._filter = (
            slot_claims_filter(org_id, project_id, prefix=prefix)
            if kind == "schedule"
            else trigger_claims_filter(org_id, project_id, prefix)
        )
        self._place = self._filter.removesuffix("+/+")
        self._first: dict[str, OrderedDict[str, SlotClaim]] = {}
        self._waiting: dict[tuple[str, str], asyncio.Future[SlotClaim]] = {}
        self._handle: SubscriptionHandle | None = None
        self._log = RateLimitedLogger(_log)
        self.rejected = 0
        """Malformed claims heard (ignored, logged at a limited rate)."""

    async def start(self) -> None:
        """Subscribe: returns once the retained claims are heard."""
        self._handle = await self._connector.subscribe(self._filter, self._on_claim)

    async def stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            await handle.unsubscribe()
        for future in self._waiting.values():
            future.cancel()

    def _on_claim(self, message: Message) -> None:
        # a claim of another org's or project's schedule of the same name is another slot's
        if not message.topic.startswith(self._place):
            return
        named = self._split(message.topic)
        if named is None:
            return
        name, slot = named
        kept = self._first.setdefault(name, OrderedDict())
        if not message.raw:  # cleared: forgotten here too
            kept.pop(slot, None)
            return
        try:
            claim = decode_slot_claim(message.raw)
        except InvalidMessageError as exc:
            self.rejected += 1
            self._log.warning("claim", "ignored a slot claim on %r: %s", message.topic, exc)
            return
        if slot in kept:
            return  # a later claim: the first stands
        kept[slot] = claim
        waiter = self._waiting.pop((name, slot), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(claim)
        while len(kept) > CLAIMS_KEPT:
            old, _ = kept.popitem(last=False)
            topic = self._topic(name, old)
            asyncio.get_running_loop().create_task(
                self._connector.publish(topic, b"", qos=1, retain=True)
            )

    def _split(self, topic: str) -> tuple[str, str] | None:
        """The name and slot level a claim's ``topic`` names."""
        if self._kind == "trigger":
            return split_trigger_claim_topic(topic, self._prefix)
        named = split_slot_claim_topic(topic, self._prefix)
        return None if named is None else (named[0], slot_stamp(named[1]))

    def _topic(self, name: str, level: str) -> str:
        if self._kind == "trigger":
            return trigger_claim_topic(self._org, self._project, name, level, self._prefix)
        return slot_claim_topic(
            self._org, self._project, name, slot_from_stamp(level), self._prefix
        )

    @staticmethod
    def _level(slot: Slot) -> str:
        return slot if isinstance(slot, str) else slot_stamp(slot)

    def claimed(self, name: str, slot: Slot) -> SlotClaim | None:
        """The first claim heard of ``name``'s ``slot``; ``None`` if none."""
        kept = self._first.get(name)
        return None if kept is None else kept.get(self._level(slot))

    def last(self, name: str) -> datetime | None:
        """The latest slot of the schedule ``name`` heard claimed; ``None`` if none."""
        kept = self._first.get(name)
        return slot_from_stamp(max(kept)) if kept else None  # stamps sort as their times

    async def claim(
        self, name: str, slot: Slot, *, backfill: bool = False, wait: float = CLAIM_WAIT
    ) -> tuple[bool, SlotClaim | None]:
        """Claim ``name``'s ``slot``: whether this server won it, and the first claim heard
        (``None`` when none, its own either, came back within ``wait`` seconds). A slot
        claimed already is not claimed again."""
        first = self.claimed(name, slot)
        if first is not None:
            return False, first
        key = (name, self._level(slot))
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
        mine = SlotClaim(
            source=self._connector.source_id,
            nonce=uuid.uuid4().hex,
            at=time.time(),
            backfill=backfill,
        )
        await self._connector.publish(self._topic(*key), mine, qos=1, retain=True)
        try:  # bounded, not wait_for: before 3.12 wait_for drops a cancel that meets the claim
            async with bounded(wait):
                first = await asyncio.shield(future)
        except asyncio.TimeoutError:
            return False, None
        return first.nonce == mine.nonce, first
