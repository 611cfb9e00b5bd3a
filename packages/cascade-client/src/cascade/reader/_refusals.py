"""What a reader refused, by source and reason: counted, so that a view can say so."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._gaps import Seen

__all__ = [
    "MAX_CLOCK_SKEW",
    "MAX_REFUSING_SOURCES",
    "REASON_BEYOND",
    "REASON_CONFLICT",
    "REASON_FOREIGN",
    "REASON_FUTURE",
    "REASON_INCONSISTENT",
    "REASON_MISMATCH",
    "REASON_UNASKED",
    "REASON_NOT_ITS_PLACE",
    "REASON_NOT_ITS_TOPIC",
    "REFUSAL_REASONS",
    "Refusals",
    "ahead",
]

MAX_CLOCK_SKEW = 300.0
"""Seconds a message's timestamp may be ahead of the reader's clock. Hosts kept by NTP are
within a second of each other; a timestamp further ahead is a forgery or a broken clock, and
would outlive retention and sort above every real run: the message is refused."""

MAX_REFUSING_SOURCES = 1024
"""Sources whose refusals a :class:`Refusals` names; the rest are summed under ``"…"``."""

REASON_FOREIGN = Seen.FOREIGN.value
"""A message about a run from another source than the run's (the source that started it)."""
REASON_CONFLICT = Seen.CONFLICT.value
"""A message numbered like another of its run, with another content."""
REASON_BEYOND = Seen.BEYOND.value
"""A number (``seq``, ``last_seq``, ``through``) the run's engine cannot have sent yet."""
REASON_FUTURE = "timestamp ahead"
"""A timestamp more than :data:`MAX_CLOCK_SKEW` ahead of the reader's clock."""

REASON_MISMATCH = "not its topic's source"
"""A message on a topic that names its source (the sourced layout, a reply) whose payload
claims another: the topic is what a broker ACL binds to a login, the payload is not."""

REASON_INCONSISTENT = Seen.INCONSISTENT.value
"""A message whose own numbers contradict each other (a summary counting more live runs than
it lists and says it leaves out): no engine sends one."""

REASON_UNASKED = Seen.UNASKED.value
"""An engine's answer (a run's snapshot) about a run this reader did not ask about: only the
runs a reader asks about can cost it an answer's memory."""

REASON_NOT_ITS_PLACE = "not its topic's org or project"
"""A run's telemetry or log lines whose payload names another org or project than its topic
(:func:`~cascade.interfaces.same_place`): the topic is what a broker ACL binds to a login's
orgs and projects, the payload is not (counted by its source)."""

REASON_NOT_ITS_TOPIC = "not its topic's scope"
"""A constraint whose payload names another scope or type than its topic: the topic is what a
broker ACL grants a writer, the payload is not (counted by the topic, relative to the prefix)."""

REFUSAL_REASONS = (
    REASON_FOREIGN,
    REASON_CONFLICT,
    REASON_BEYOND,
    REASON_FUTURE,
    REASON_MISMATCH,
    REASON_INCONSISTENT,
    REASON_UNASKED,
    REASON_NOT_ITS_TOPIC,
    REASON_NOT_ITS_PLACE,
)
"""Every reason a reader refuses a message for."""

_OTHERS = "…"


def ahead(ts: float, now: float) -> bool:
    """Whether a message stamped ``ts`` (epoch seconds) claims a time the reader, at ``now``,
    has not reached yet, beyond :data:`MAX_CLOCK_SKEW`."""
    return ts - now > MAX_CLOCK_SKEW


@dataclass
class Refusals:
    """Messages a reader refused, counted by the source they claim and the reason.

    Bounded: at most :data:`MAX_REFUSING_SOURCES` sources are named, the others are
    counted together under ``"…"``.
    """

    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    total: int = 0

    def count(self, source: str, reason: str, n: int = 1) -> None:
        """``n`` messages claiming ``source`` were refused for ``reason``."""
        reasons = self.by_source.get(source)
        if reasons is None:
            if len(self.by_source) >= MAX_REFUSING_SOURCES:
                source = _OTHERS
            reasons = self.by_source.setdefault(source, {})
        reasons[reason] = reasons.get(reason, 0) + n
        self.total += n

    def of(self, source: str) -> int:
        """How many messages claiming ``source`` were refused."""
        return sum(self.by_source.get(source, {}).values())

    def describe(self, source: str) -> str:
        """``source``'s refusals in words, most first: ``3 foreign source, 1 conflict``."""
        reasons = self.by_source.get(source, {})
        ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{n:,} {reason}" for reason, n in ranked)
