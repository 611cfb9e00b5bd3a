"""The standby: a second connection made ahead to the next node, for QoS 0 during a failover."""

from __future__ import annotations

import asyncio
import logging

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import ConnectError

from ._backoff import Backoff
from ._connection import Connection
from ._hosts import Node, node_name
from ._link import LinkError, LinkFactory
from ._options import ConnectorOptions
from ._sender import Sender
from ._stats import MqttConnectorStats

__all__ = ["Standby"]

_log = logging.getLogger("cascade.connectors.mqtt")

_HANDOVER_WAIT = 1.0  # seconds the new connection waits for the standby's last writes


class Standby:
    """A spare connection kept open to the node after the one served, and the bridge over it.

    Some clustered brokers answer no new connection for seconds after one of
    their nodes dies, while connections already open to the surviving nodes
    go on carrying QoS 0 at once (NATS elects new JetStream leaders: a
    CONNECT waited 5 to 10 s, QoS 0 between clients connected before 0.02 s).
    So with ``MqttConnector(hosts=[...], standby=True)`` the connector keeps
    one more connection, to the node it would move to: no will, no
    subscriptions, a clean session, a client id of its own. When the served
    connection is lost, the QoS 0 messages at the head of the outgoing buffer
    go through the standby (:meth:`bridge`) until a new connection is served
    (:meth:`hand_over`). A QoS 1 message stops the bridge: such a broker holds
    QoS 1 for the same election, and nothing published after it may overtake
    it, so it and what follows wait for the new connection.

    A bridged message is settled once its link has written it: a QoS 0
    message has no answer, and asking for one (a QoS 1 request) would wait for
    the election too. What is not yet written when the standby goes, or when
    the new connection takes over, is put back in front of the queue, to be
    sent again (a reader may see it twice, as after any lost connection).
    """

    def __init__(
        self,
        options: ConnectorOptions,
        make_link: LinkFactory,
        sender: Sender,
        marker_topic: str,
        stats: MqttConnectorStats,
        log: RateLimitedLogger,
    ) -> None:
        self._options = options
        self._make_link = make_link
        self._sender = sender
        self._marker_topic = marker_topic
        self._stats = stats
        self._log = log
        self._node: Node | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._leaving: set[asyncio.Task[None]] = set()  # keepers of nodes left, closing
        self._connection: Connection | None = None  # open, while the keeper holds it
        self._bridge: asyncio.Task[None] | None = None
        self._all_written: asyncio.Future[None] | None = None  # hand_over() waits on it

    @property
    def connected(self) -> bool:
        """Whether the standby connection is open now."""
        connection = self._connection
        return connection is not None and connection.connected()

    # -- the spare connection -------------------------------------------------------------

    def follow(self, node: Node) -> None:
        """Keep the standby on ``node`` (the one after the node served), moving it there."""
        if node == self._node and self._keeper is not None and not self._keeper.done():
            return
        if self._keeper is not None:
            self._keeper.cancel()
            self._leaving.add(self._keeper)
            self._keeper.add_done_callback(self._leaving.discard)
        self._node = node
        self._keeper = asyncio.create_task(self._keep(node), name="cascade-mqtt-standby")

    async def close(self) -> None:
        """End the bridge and the standby connection (``disconnect()``)."""
        await self.hand_over()
        keeper, self._keeper, self._node = self._keeper, None, None
        if keeper is not None:
            keeper.cancel()
            self._leaving.add(keeper)
        if self._leaving:
            await asyncio.wait(self._leaving)

    async def _keep(self, node: Node) -> None:
        """Connect to ``node`` and hold the connection until it goes; again, with backoff."""
        backoff = Backoff(self._options.backoff_initial, self._options.backoff_max)
        where = node_name(node)
        while True:
            connection = Connection(
                self._make_link,
                self._options.standby_settings(node),
                self._marker_topic,
                settled=self._settled,
                unreadable=lambda topic, reason: None,  # it subscribes to nothing
                shed=lambda count: None,
            )
            try:
                await connection.open()
            except BaseException as exc:  # a ConnectError, or cancelled (moved, or closing)
                await asyncio.shield(connection.close(graceful=False))
                if not isinstance(exc, ConnectError):
                    raise
                self._log.warning(
                    "standby-unreachable", "the standby connection to %s failed: %s", where, exc
                )
                await asyncio.sleep(backoff.next_delay())
                continue
            opened = asyncio.get_running_loop().time()
            self._connection = connection
            self._sender.wake_up()  # a bridge waiting for a standby goes on
            try:
                async for _ in connection.messages():
                    pass  # nothing is subscribed: this only waits for the connection to go
            except LinkError as exc:
                self._log.warning("standby-lost", "the standby connection to %s: %s", where, exc)
            finally:
                if self._connection is connection:  # not yet replaced by the next node's
                    self._connection = None
                    self._put_back()
                connection.end()
                await asyncio.shield(connection.close(graceful=True))
            if asyncio.get_running_loop().time() - opened >= backoff.maximum:
                backoff.reset()  # it stayed up: not a node that drops it at once
            await asyncio.sleep(backoff.next_delay())

    # -- the bridge -----------------------------------------------------------------------

    def bridge(self) -> None:
        """The served connection is lost: send QoS 0 through the standby until :meth:`hand_over`."""
        if self._bridge is None or self._bridge.done():
            self._bridge = asyncio.create_task(self._drain(), name="cascade-mqtt-bridge")
            if self.connected:
                _log.info(
                    "telemetry goes through the standby connection to %s until reconnected",
                    node_name(self._node) if self._node else "?",
                )

    async def hand_over(self) -> None:
        """A new connection is about to send: stop the bridge; what it did not see written
        (within about a second) is put back in front of the queue."""
        bridge, self._bridge = self._bridge, None
        if bridge is None:
            return
        bridge.cancel()
        await asyncio.wait({bridge})
        if self._sender.buffer.aside:
            waiter = self._all_written = asyncio.get_running_loop().create_future()
            await asyncio.wait({waiter}, timeout=_HANDOVER_WAIT)
            self._all_written = None
        self._put_back()

    async def _drain(self) -> None:
        sender = self._sender
        buffer, wake = sender.buffer, sender.wake
        queued, limit = buffer.queued, sender.max_in_flight
        assert wake is not None
        wake.set()  # what waits in the buffer goes at once
        while True:
            await wake.wait()
            wake.clear()
            connection = self._connection
            while (
                connection is not None
                and connection.connected()
                and queued
                and queued[0].qos == 0
                and buffer.aside_count < limit
            ):
                messages, packets = sender.qos0_run(connection.mqtt5, limit - buffer.aside_count)
                if messages:
                    buffer.set_aside(connection.queue_qos0(packets), messages)
                await asyncio.sleep(0)  # let the event loop write it

    def _settled(self, connection: Connection, mid: int, refusal: object) -> None:
        """The standby's link wrote run ``mid``: its messages are settled (published)."""
        buffer = self._sender.buffer
        settled = buffer.written_aside(mid)
        if not settled:
            connection.settled(mid)
            return
        self._stats.bridged += settled
        self._stats.published += settled
        waiter = self._all_written
        if not buffer.aside and waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._sender.wake_up()  # room for the bridge again

    def _put_back(self) -> None:
        """Bridged runs not written: back in front of the queue, in order, to be sent again."""
        if self._sender.buffer.put_back_aside():
            self._sender.wake_up()
