"""The retained engine statuses `cascade forget` reads, and which are stale
(the command is :mod:`.commands.forget`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cascade.interfaces import (
    InvalidMessageError,
    Message,
    StatusMessage,
    decode_level,
    decode_status,
    same_source,
    status_filter,
)
from cascade.interfaces.summaries import decode_summary, summary_topic
from cascade.interfaces.wire import placed_summaries
from cascade.reader import parse_timestamp

__all__ = ["RetainedStatus", "placed_topics", "retained_statuses", "stale_statuses"]


@dataclass(frozen=True)
class RetainedStatus:
    """A status the broker retains: its topic, and the message (``None`` if malformed)."""

    topic: str
    status: StatusMessage | None

    @property
    def source(self) -> str:
        """The source it is about: its topic's last level, decoded."""
        return decode_level(self.topic.rsplit("/", 1)[-1])

    def offline_for_longer_than(self, age: float, now: float) -> bool:
        """Offline (or malformed), and stamped more than ``age`` seconds ago (or not stamped)."""
        if self.status is not None and self.status.status == "online":
            return False
        stamped = parse_timestamp(self.status.ts) if self.status is not None else None
        return stamped is None or now - stamped > age


def stale_statuses(retained: list[RetainedStatus], age: float, now: float) -> list[RetainedStatus]:
    """The statuses ``forget --offline-older-than AGE`` clears, by topic."""
    return sorted(
        (s for s in retained if s.offline_for_longer_than(age, now)), key=lambda s: s.topic
    )


async def retained_statuses(connector: Any) -> list[RetainedStatus]:
    found: dict[str, RetainedStatus] = {}

    def keep(message: Message) -> None:
        if not message.retain or not message.payload:
            return
        try:
            status: StatusMessage | None = decode_status(message.payload)
        except InvalidMessageError:
            status = None
        found[message.topic] = RetainedStatus(message.topic, status)

    handle = await connector.subscribe(status_filter(connector.topic_prefix), keep)
    await handle.unsubscribe()
    return list(found.values())


async def placed_topics(connector: Any, source: str) -> list[str]:
    """The topics of ``source``'s summaries per org and project, as its retained summary
    lists them (the engine clears those of the places it no longer lists): read exactly, so
    on every broker."""
    prefix = connector.topic_prefix
    said: list[Message] = []
    handle = await connector.subscribe(summary_topic(source, prefix), said.append)
    await handle.unsubscribe()
    topics: list[str] = []
    for message in said:
        if not message.retain or not message.raw:
            continue
        try:
            summary = decode_summary(message.raw)
        except InvalidMessageError:
            continue
        if same_source(summary.source, message.topic.rsplit("/", 1)[-1]):  # not another's
            topics += placed_summaries(summary, prefix)
    return sorted(set(topics))
