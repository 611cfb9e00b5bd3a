"""Subscriptions: SUBSCRIBE with markers behind the retained messages, and the reader."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable, Sequence

from cascade.connector_kit import Dispatcher, RateLimitedLogger, Subscription, bounded
from cascade.interfaces import (
    BrokerCapabilities,
    MessageCallback,
    SyncCallback,
    topic_matches,
)

from ._connection import Connection
from ._link import LinkError
from ._lone_subscribes import LoneSubscribes
from ._refused_subscribes import RefusedSubscribes, is_refused
from ._stats import MqttConnectorStats

__all__ = ["Subscriptions"]

_log = logging.getLogger("cascade.connectors.mqtt")


class Subscriptions:
    """The connector's subscriptions, made again on every connection, and their delivery.

    After each SUBSCRIBE a *marker* goes to this connection's own topic: the
    broker sends a subscription's retained messages before it handles the
    marker, so when the marker is back they have all been dispatched. Under
    MQTT 5 each filter has a subscription identifier for the connector's
    life, so that a message matching several filters reaches each filter's
    subscribers once.

    The first connection also learns whether the broker sends retained
    messages to wildcard subscriptions (:attr:`capabilities`): before its
    SUBSCRIBE it publishes a retained probe under the connector's own marker
    space and subscribes to it through a ``+`` filter; the probe is back
    before the marker if, and only if, the broker does. The probe is then
    cleared. It costs no round trip of its own.

    A connection lost with a SUBSCRIBE outstanding makes the next ones
    subscribe one filter per SUBSCRIBE, and a filter whose lone SUBSCRIBE
    keeps losing the connection is given up (see ``_lone_subscribes.py``).

    It keeps no connection: it is handed the one it works on, and asks
    ``online()`` for the one new subscriptions are made on at once.
    """

    def __init__(
        self,
        stats: MqttConnectorStats,
        marker_base: str,
        connect_timeout: float,
        log: RateLimitedLogger,
        online: Callable[[], Connection | None],
        *,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self.dispatcher = Dispatcher(stats, self._unsubscribe_at_broker, _log)
        self._online = online  # the connection being served, once resubscribed; else None
        self._stats = stats
        self._lone = LoneSubscribes()
        self._refused = RefusedSubscribes(
            stats,
            log,
            self._subscribe_one,
            self._regranted,
            initial=backoff_initial,
            maximum=max(backoff_initial, min(backoff_max, _MAX_RESUBSCRIBE_DELAY)),
        )
        self._marker_base = marker_base  # {prefix}/_marker/{source}
        self._connect_timeout = connect_timeout
        self._log = log
        # source and session may be shared: other connectors of this process, same millisecond
        self._nonce = uuid.uuid4().hex
        self._markers: dict[bytes, asyncio.Future[None]] = {}
        self._marker_actions: dict[bytes, Callable[[], None]] = {}  # run by the reader on arrival
        self._marker_ids = itertools.count(1)
        self._own: frozenset[str] = frozenset()  # the connector's own filters: never unsubscribed
        self.capabilities = BrokerCapabilities()
        self.on_probed: Callable[[BrokerCapabilities], None] | None = None
        self._probe_topic = f"{marker_base}/{self._nonce}/probe"
        self._probe_seen = False
        self._ids: dict[str, int] = {}
        self._id_filters: dict[int, str] = {}
        self._next_id = itertools.count(1)

    def marker_topic(self, session: int) -> str:
        """The marker topic of a connection of this session: this connector's alone."""
        return f"{self._marker_base}/{session}-{self._nonce}"

    # -- subscribing ----------------------------------------------------------------------

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, on_sync: SyncCallback | None
    ) -> Subscription:
        """Add a subscription; when connected, return once its retained messages are in."""
        subscription = self.dispatcher.add(topic_filter, callback, on_sync)
        connection = self._online()
        if connection is None:
            return subscription  # made on connection
        try:
            await self._subscribe_at_broker(connection, subscription)
        except asyncio.CancelledError:
            await subscription.unsubscribe()  # the caller never gets the handle to do it
            raise
        return subscription

    async def resubscribe(self, connection: Connection, own: Sequence[str]) -> None:
        """SUBSCRIBE a new connection to ``own`` and every subscription's filter; LinkError.

        Once the supervisor has it online, new subscriptions are made on it at once.
        """
        self._own = frozenset(own)
        probing = self.capabilities.retained_to_wildcards is None
        probe_filter = self._probe_topic.rsplit("/", 1)[0] + "/+"
        if probing:  # published before the SUBSCRIBE: a broker that keeps order has it then
            self._probe_seen = False
            connection.send(self._probe_topic, b'{"probe":1}', 1, True)
        lone = self._lone
        subscribed: set[str] = set()
        refused: list[tuple[str, object]] = []
        wanted = [*own, *([probe_filter] if probing else []), *self.dispatcher.filters]
        self.dispatcher.sync("begin")
        while wanted := [f for f in wanted if not lone.is_given_up(f)]:
            if lone.one_at_a_time:
                for topic_filter in wanted:
                    refused += await self._subscribe(connection, [topic_filter])
            else:
                refused += await self._subscribe(connection, wanted)
            subscribed.update(wanted)
            # filters may be added while we wait for the SUBACK
            wanted = [f for f in self.dispatcher.filters if f not in subscribed]
        lone.resubscribed()
        for topic_filter, code in refused:  # their snapshots end when they are granted
            self._refused.refused(connection, topic_filter, code)
        not_granted = {topic_filter for topic_filter, _ in refused}
        if probing:  # first: a snapshot's end may depend on what the probe finds
            self._send_marker(connection, lambda: self._probed(connection, probe_filter))
        if self.dispatcher.syncing:
            self._send_marker(connection, lambda: self.dispatcher.sync("end", skip=not_granted))

    def _probed(self, connection: Connection, probe_filter: str) -> None:
        """The marker behind the probe is back: the probe came before it, or it never will."""
        seen = self._probe_seen
        self.capabilities = BrokerCapabilities(retained_to_wildcards=seen)
        if not self._lone.is_given_up(probe_filter):
            connection.unsubscribe(probe_filter)
        connection.send(self._probe_topic, b"", 1, True)  # cleared
        _log.info(
            "the broker %s retained messages to wildcard subscriptions",
            "sends" if seen else "does not send",
        )
        if self.on_probed is not None:
            self.on_probed(self.capabilities)

    async def _subscribe(
        self, connection: Connection, filters: list[str]
    ) -> list[tuple[str, object]]:
        """SUBSCRIBE (at the connection's QoS) and wait for the SUBACKs; the filters refused,
        with their codes.

        The marker topic needs no identifier. mosquitto grants every valid filter (its
        ACLs act on delivery); other brokers refuse some (an ACL, a subscription quota,
        NATS a consumer it cannot create) with 0x80 or above.
        """
        marker_topic = connection.marker_topic
        use_ids = connection.subscription_ids
        pairs = [
            (f, self._subscription_id(f) if use_ids and f != marker_topic else None)
            for f in filters
        ]
        try:
            codes = await connection.subscribe(pairs)
        except LinkError:
            self._stats.subscriptions_cut += 1
            raise
        self._lone.answered(filters)
        # a short SUBACK: no crash
        return [(f, code) for f, code in zip(filters, codes, strict=False) if is_refused(code)]

    async def _subscribe_one(self, connection: Connection, topic_filter: str) -> object:
        """SUBSCRIBE ``topic_filter`` again (a refused one); its SUBACK's code."""
        refused = await self._subscribe(connection, [topic_filter])
        return refused[0][1] if refused else 0

    def _regranted(self, connection: Connection, topic_filter: str) -> asyncio.Future[None]:
        """A refused filter is granted: its snapshot ends when the marker behind it is back.

        The marker topic itself refused, the markers sent before it was granted never
        came back: every snapshot not refused ends with this one.
        """
        if topic_filter == connection.marker_topic:
            action = lambda: self.dispatcher.sync("end", skip=self._refused.filters)  # noqa: E731
        else:
            action = lambda: self.dispatcher.sync("end", only=(topic_filter,))  # noqa: E731
        _, marker = self._send_marker(connection, action)
        return marker

    def _subscription_id(self, topic_filter: str) -> int:
        """The filter's identifier, the same for the connector's life (a new one if it has none)."""
        number = self._ids.get(topic_filter)
        if number is None:
            number = next(self._next_id)
            self._ids[topic_filter] = number
            self._id_filters[number] = topic_filter
        return number

    async def _subscribe_at_broker(
        self, connection: Connection, subscription: Subscription
    ) -> None:
        """SUBSCRIBE, then wait for the marker behind the filter's retained messages."""
        topic_filter = subscription.topic_filter
        subscription.sync("begin")
        granted = self._refused.retrying(topic_filter)  # then its end comes with the others'
        try:
            if granted is None and not self._lone.is_given_up(topic_filter):
                # else, as if granted with nothing
                refused = await self._subscribe(connection, [topic_filter])
                if refused:
                    granted = self._refused.refused(connection, topic_filter, refused[0][1])
        except LinkError as exc:
            _log.warning("subscribe to %r failed (%s); retried on reconnection", topic_filter, exc)
            return
        if granted is not None:
            await self._wait_granted(connection, topic_filter, granted)
            return
        token, marker = self._send_marker(connection, lambda: subscription.sync("end"))
        if connection.in_reader():
            return  # called from a callback: the reader cannot wait for itself
        try:
            async with bounded(self._connect_timeout):
                await marker
        except asyncio.TimeoutError:
            _log.warning(
                "retained messages for %r not confirmed within %.1f s (connect_timeout)",
                topic_filter,
                self._connect_timeout,
            )
        finally:
            self._markers.pop(token, None)

    async def _wait_granted(
        self, connection: Connection, topic_filter: str, granted: asyncio.Future[None]
    ) -> None:
        """Wait (at most ``connect_timeout``) for a refused filter to be granted and synced."""
        if connection.in_reader():
            return  # called from a callback: the reader cannot wait for itself
        try:
            async with bounded(self._connect_timeout):
                await asyncio.shield(granted)
        except asyncio.TimeoutError:
            _log.warning(
                "the subscription to %r was not granted within %.1f s (connect_timeout); "
                "still subscribing again with backoff",
                topic_filter,
                self._connect_timeout,
            )

    def _send_marker(
        self, connection: Connection, on_arrival: Callable[[], None]
    ) -> tuple[bytes, asyncio.Future[None]]:
        """Publish a marker on this connection's own topic; the reader runs ``on_arrival`` for it.

        The broker handles the marker after every SUBSCRIBE sent before it, so
        when it comes back their retained messages have all been dispatched.
        A lost connection discards it unrun.
        """
        token = b'{"marker":%d}' % next(self._marker_ids)
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._markers[token] = marker
        self._marker_actions[token] = on_arrival
        connection.send(connection.marker_topic, token, 1, False)
        return token, marker

    async def _unsubscribe_at_broker(self, topic_filter: str) -> None:
        """Queue an UNSUBSCRIBE without waiting for the broker's UNSUBACK.

        Delivery has already stopped locally. Waiting would put the broker's
        backlog (every telemetry message queued before it) on the caller's
        path: an engine unsubscribes at the end of each run. Queued now, the
        packet still goes out before any later SUBSCRIBE of the same filter.
        A lost connection needs nothing: filters are remade from the dispatcher.
        The connector's own filters stay: it still needs them. A filter given
        up has nothing to unsubscribe, and is tried again if subscribed anew.
        """
        given_up = self._lone.is_given_up(topic_filter)
        self._lone.forget(topic_filter)
        self._refused.forget(topic_filter)
        connection = self._online()
        if connection is not None and topic_filter not in self._own and not given_up:
            connection.unsubscribe(topic_filter)

    def lost(self, connection: Connection) -> None:
        """``connection`` is gone: markers sent on it will not come back, and a filter whose
        SUBSCRIBE was alone outstanding on it may be given up (see ``_lone_subscribes.py``)."""
        self._refused.lost()
        given_up = self._lone.lost(connection.unanswered)
        if given_up is not None:
            self._stats.subscriptions_given_up += 1
            _log.warning(
                "gave up the subscription to %r: the broker closed the connection each of the "
                "%d times it was subscribed alone (does its ACL deny this client that filter?); "
                "nothing will arrive on it",
                given_up,
                self._lone.max_losses,
            )
        for future in self._markers.values():
            if not future.done():
                future.set_result(None)
        self._markers.clear()
        self._marker_actions.clear()

    # -- receiving ------------------------------------------------------------------------

    async def read(
        self, connection: Connection, own_status: str | None, on_own_status: OwnStatus
    ) -> None:
        """The subscribe loop: dispatch every message; ends when the connection goes.

        Messages on ``own_status`` (this source's status topic) also go to
        ``on_own_status`` first, with the connection to answer on. A callback
        that called disconnect() ends it once it returns.
        """
        marker_topic, own_space = connection.marker_topic, connection.own_space
        async for message in connection.messages():
            topic = message.topic
            if topic == marker_topic:
                raw = message.payload
                marker = self._markers.pop(raw, None)
                if marker is not None and not marker.done():
                    marker.set_result(None)
                action = self._marker_actions.pop(raw, None)
                if action is not None:
                    action()
                continue
            if topic.startswith(own_space) or topic == self._probe_topic:
                # only a copy sent because of the SUBSCRIBE carries the retain flag: RabbitMQ
                # 3.x may route the probe after the SUBSCRIBE sent behind it (two channels),
                # and that live copy says nothing of retained messages to wildcards
                if topic == self._probe_topic and message.payload and message.retain:
                    self._probe_seen = True
                continue  # our own probe, or a confirmation request seen through a wide filter
            # under MQTT 5 the broker sends a copy per matching subscription: each is for its own
            matched = self._matched_filters(message.subscription_ids, topic)
            if topic == own_status and (matched is None or own_status in matched):
                on_own_status(connection, message.payload)
            await self.dispatcher.dispatch(
                topic, message.payload, message.qos, message.retain, filters=matched
            )
            if connection.reader_closes:
                return  # a callback disconnected: this connection is closed

    def _matched_filters(self, numbers: tuple[int, ...], topic: str) -> set[str] | None:
        """The filters a received copy is for, from its subscription identifiers.

        ``None`` (every matching filter) without identifiers: MQTT 3.1.1, whose
        broker sends one copy per message, or a broker that does not have them;
        also when none of them names a filter of this connector that matches the
        topic: a persistent session's message queued under the identifiers of an
        earlier connector (another process with the same client id, which may
        have numbered its filters otherwise) goes to every filter it matches.
        A filter nobody subscribes to any more has no subscriptions to deliver to.
        """
        if not numbers:
            return None
        filters = self._id_filters
        known = {filters[n] for n in numbers if n in filters and topic_matches(filters[n], topic)}
        return known or None


_MAX_RESUBSCRIBE_DELAY = 5.0
"""Seconds at most between SUBSCRIBEs of a refused filter: its subscribers wait on it."""

OwnStatus = Callable[[Connection, bytes], None]
