"""Routing received messages to subscriptions: the part every connector shares."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection

from cascade.interfaces import (
    ConnectorStats,
    InvalidMessageError,
    Message,
    MessageCallback,
    SyncCallback,
    SyncPhase,
    decode_payload,
    topic_matches,
    validate_filter,
)
from cascade.interfaces.wire import levels_match

from ._ratelimit import RateLimitedLogger

__all__ = ["Dispatcher", "Subscription"]

_log = logging.getLogger("cascade.connector_kit.dispatch")

# A topic is matched against each subscription's filter for every message it carries: a run's
# events share one topic, so most matches were decided moments ago (an invalid topic raises,
# and is not kept).
_matches = functools.lru_cache(maxsize=16_384)(topic_matches)


class Subscription:
    """One callback on one topic filter; the :class:`SubscriptionHandle` connectors return."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        topic_filter: str,
        callback: MessageCallback,
        on_sync: SyncCallback | None = None,
    ):
        self._dispatcher = dispatcher
        self._topic_filter = topic_filter
        self.levels = validate_filter(topic_filter).split("/")  # what topics are matched against
        self.callback = callback
        self.on_sync = on_sync
        self.active = True

    def sync(self, phase: SyncPhase) -> None:
        """Tell the subscriber where its retained snapshot is; a raising ``on_sync`` is logged."""
        if self.on_sync is None or not self.active:
            return
        try:
            self.on_sync(phase)
        except Exception:
            self._dispatcher.callback_failed(self, f"on_sync({phase!r})")

    @property
    def topic_filter(self) -> str:
        """The filter this subscription was made with."""
        return self._topic_filter

    async def unsubscribe(self) -> None:
        """Stop delivery to this callback; the last one on a filter unsubscribes at the broker."""
        if self.active:
            self.active = False
            await self._dispatcher.remove(self)

    def __repr__(self) -> str:
        return f"<Subscription {self._topic_filter!r} active={self.active}>"


# Topics whose matching subscriptions are remembered. A fleet's readers see two or three
# topics per engine (status, summary, heartbeat) again and again: at 10,000 engines a 4,096
# cache was cleared before any topic came round again, and every message was matched against
# every filter (38 against 11 µs a message, measured). An entry is its topic and a short list.
_TARGETS_KEPT = 65_536


class Dispatcher:
    """Keeps a connector's subscriptions and delivers each received message to every match.

    Payloads are decoded once per message; a payload that is not a JSON object
    is counted in ``stats.rejected`` and logged (rate-limited), and a callback
    that raises is counted in ``stats.callback_errors`` and logged, without
    affecting the other callbacks. ``on_unused`` is awaited with a filter that
    no subscription uses any more, so the connector can unsubscribe at the broker.
    """

    def __init__(
        self,
        stats: ConnectorStats,
        on_unused: Callable[[str], Awaitable[None]],
        logger: logging.Logger = _log,
    ) -> None:
        self._stats = stats
        self._on_unused = on_unused
        self._subscriptions: list[Subscription] = []
        self._targets: dict[str, list[Subscription]] = {}  # by topic, while none is added/removed
        self._log = RateLimitedLogger(logger)

    @property
    def filters(self) -> list[str]:
        """Every distinct filter in use, in the order first subscribed."""
        return list(dict.fromkeys(s.topic_filter for s in self._subscriptions))

    @property
    def syncing(self) -> bool:
        """Whether any subscription wants to hear where its retained snapshot is (``on_sync``)."""
        return any(s.on_sync is not None for s in self._subscriptions)

    def uses(self, topic_filter: str) -> bool:
        """Whether any subscription uses ``topic_filter``."""
        return any(s.topic_filter == topic_filter for s in self._subscriptions)

    def add(
        self, topic_filter: str, callback: MessageCallback, on_sync: SyncCallback | None = None
    ) -> Subscription:
        """Register ``callback`` on ``topic_filter`` (validated; raises ``InvalidTopicError``)."""
        validate_filter(topic_filter)
        subscription = Subscription(self, topic_filter, callback, on_sync)
        self._subscriptions.append(subscription)
        self._targets.clear()
        return subscription

    def sync(
        self,
        phase: SyncPhase,
        *,
        only: Collection[str] | None = None,
        skip: Collection[str] = (),
    ) -> None:
        """Tell every subscription that a (re)subscription's retained snapshot begins or ends.

        ``only``: just the subscriptions on those filters; ``skip``: not those on these
        (a filter the broker refused has no snapshot yet).
        """
        for subscription in list(self._subscriptions):
            topic_filter = subscription.topic_filter
            if topic_filter in skip or (only is not None and topic_filter not in only):
                continue
            subscription.sync(phase)

    def callback_failed(self, subscription: Subscription, what: str) -> None:
        """Count and log (rate-limited, with the traceback) a subscriber's code that raised."""
        self._stats.callback_errors += 1
        self._log.log(
            logging.ERROR,
            f"callback:{subscription.topic_filter}",
            "subscription %s on %r raised",
            what,
            subscription.topic_filter,
            exc_info=True,
        )

    async def remove(self, subscription: Subscription) -> None:
        """Forget ``subscription``; tell the connector when its filter is no longer used."""
        subscription.active = False
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._targets.clear()
            if not self.uses(subscription.topic_filter):
                await self._on_unused(subscription.topic_filter)

    async def dispatch(
        self,
        topic: str,
        raw: bytes,
        qos: int = 0,
        retain: bool = False,
        *,
        filters: Collection[str] | None = None,
    ) -> None:
        """Decode ``raw`` and deliver it to every active subscription whose filter matches.

        ``filters``, when given, restricts delivery to subscriptions on those
        filters: a broker that sends one copy of a message per matching
        subscription (MQTT 5) says which filters each copy is for.
        """
        if filters is None:
            targets = self._targets.get(topic)
            if targets is None:  # topics repeat (a run's events): each is matched once
                if len(self._targets) >= _TARGETS_KEPT:
                    self._targets.clear()
                levels = topic.split("/")
                targets = self._targets[topic] = [
                    s for s in self._subscriptions if levels_match(s.levels, levels)
                ]
        else:  # MQTT 5: the filters this copy is for
            targets = [
                s
                for s in self._subscriptions
                if s.topic_filter in filters and _matches(s.topic_filter, topic)
            ]
        if not targets:
            return
        try:
            payload = decode_payload(raw)
        except InvalidMessageError as exc:
            self._stats.rejected += 1
            self._log.warning("rejected", "rejected message on %r: %s", topic, exc)
            return
        self._stats.received += 1
        message = Message(topic=topic, payload=payload, raw=raw, qos=qos, retain=retain)
        for subscription in targets:
            if not subscription.active:
                continue
            try:
                result = subscription.callback(message)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                self.callback_failed(subscription, f"callback for {topic!r}")
