"""The supervisor: connection attempts with backoff, and the life of one connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from cascade.connector_kit import RateLimitedLogger, bounded
from cascade.interfaces import ConnectError, FlushTimeoutError

from ._backoff import Backoff
from ._connection import Connection
from ._hosts import Node, node_name
from ._link import ConnectRefusedError, LinkError, LinkFactory
from ._losses import report_loss
from ._options import ConnectorOptions
from ._presence import Presence
from ._rollcall import RollCall
from ._rotation import Rotation, first_answer
from ._sender import Sender
from ._standby import Standby
from ._stats import MqttConnectorStats
from ._subscriptions import Subscriptions

__all__ = ["Supervisor", "cancel_and_wait"]

_log = logging.getLogger("cascade.connectors.mqtt")


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has really ended.

    A link may drop a cancellation that arrives just as the broker answers
    (aiomqtt's ``asyncio.wait_for`` did before Python 3.12, seen with a CONNACK
    right after a hung broker resumed, until the link stopped giving aiomqtt
    timeouts). One ``cancel()`` may therefore be lost; cancel again until the
    task is done.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)


class Supervisor:
    """Keeps one connection up while the connector is started.

    With several nodes (``hosts=[...]``) the attempts go to each in turn:
    the first attempt to the first node, and after a failed attempt or a lost
    connection the next node, at once; the backoff delay comes after a round
    in which every node failed, and after a lost connection as with one node.
    Each attempt gets a new session and a new :class:`~._connection.Connection`
    (with its link); a connection is served (presence, subscriptions, the
    reader and the sender) until it goes, then the next attempt waits its
    backoff. The supervisor is the only keeper of the connection being
    served: the parts are handed it, or ask :meth:`online_connection`, and
    everything a lost connection ends is ended in one place (:meth:`_supervise`).
    With ``standby=True`` it also keeps a :class:`~._standby.Standby` on the
    node after the one served, through which QoS 0 goes while no connection is.
    Failed or abandoned attempts are closed in tasks of their own, which
    :meth:`shut_down` waits for. Its state is read through properties and
    changed only by its methods.
    """

    def __init__(
        self,
        options: ConnectorOptions,
        make_link: LinkFactory,
        presence: Presence,
        sender: Sender,
        subscriptions: Subscriptions,
        stats: MqttConnectorStats,
        log: RateLimitedLogger,
    ) -> None:
        self._backoff = Backoff(options.backoff_initial, options.backoff_max)
        # Whether the connector is started (connecting, connected or reconnecting): read on
        # every publish(), hence an attribute; changed only by begin(), halt() and
        # reset_if_abandoned().
        self.started = False
        self._online = False
        self._connection: Connection | None = None  # the one being served
        self._task: asyncio.Task[None] | None = None
        # connect(require=True)'s first attempt
        self._opening: asyncio.Task[Connection] | None = None
        self._online_event: asyncio.Event | None = None
        self._attempted: asyncio.Event | None = None  # set after the first attempt (or stop)
        self._closings: set[asyncio.Task[None]] = set()  # connections being closed
        self._options = options
        self._make_link = make_link
        self._presence = presence
        self._sender = sender
        self._subscriptions = subscriptions
        self._stats = stats
        self._log = log
        self._closing = False
        self._ever_connected = False
        self._rotation = Rotation(options.nodes)
        self.standby: Standby | None = None
        if options.standby:
            marker = f"{subscriptions.marker_topic(0)}-standby"
            self.standby = Standby(options, make_link, sender, marker, stats, log)
        self._rollcall: RollCall | None = None
        if presence.enabled:
            self._rollcall = RollCall(subscriptions, options.topic_prefix, self._announce_online)
            subscriptions.on_probed = self._rollcall.probed

    # -- state ----------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether a connection is up, presence announced and subscriptions remade."""
        return self._online

    def online_connection(self) -> Connection | None:
        """The connection being served once online (subscriptions remade), else ``None``."""
        return self._connection if self._online else None

    @property
    def node(self) -> Node:
        """The node connected to, or being tried (the first before any attempt)."""
        return self._rotation.current

    @property
    def where(self) -> str:
        """The node as ``host:port``, for messages."""
        return self._rotation.where

    @property
    def ever_connected(self) -> bool:
        """Whether a connection came up since the last start."""
        return self._ever_connected

    def reset_if_abandoned(self) -> None:
        """Forget a start whose event loop ended without ``disconnect()``: its task is gone."""
        task = self._task
        if self.started and (
            task is None or task.done() or task.get_loop() is not asyncio.get_running_loop()
        ):
            self.started = False

    async def wait_online(self, timeout: float | None) -> bool:
        """Wait until a connection is up; ``False`` after ``timeout`` or when not started."""
        event = self._online_event
        if not self.started or event is None:
            return False
        try:
            async with bounded(timeout):
                await event.wait()
        except asyncio.TimeoutError:
            return False
        return True

    def halt(self) -> None:
        """``disconnect()`` begins: nothing more is published, announced or answered.

        Called from a subscription callback (in the reader), it lets the
        reader end by itself once the callback returns, instead of having it
        cancelled in the middle of that ``disconnect()``.
        """
        self.started = False
        connection = self._connection
        if connection is not None and connection.in_reader():
            connection.close_from_reader()

    async def abandon(self) -> None:
        """Not started: end the first attempt ``connect(require=True)`` waits on, if any."""
        if self._opening is not None:
            await cancel_and_wait(self._opening)
        if self._closings:
            await asyncio.wait(self._closings)

    # -- starting and stopping ------------------------------------------------------------

    async def begin(self, require: bool, given_up: Callable[[], bool]) -> None:
        """Start supervising, after a first attempt if ``require``; wait for its first attempt.

        With ``require`` that attempt runs in a task of its own, which
        :meth:`abandon` cancels; ``given_up()`` says whether it did. In
        all, at most ``connect_timeout``; then presence and subscriptions follow.
        """
        self._closing = False
        self._ever_connected = False
        self._rotation.restart()
        attempted = self._attempted = asyncio.Event()
        self._online_event = asyncio.Event()
        self._backoff.reset()
        self._sender.start()
        connection = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.connect_timeout
        if require:
            first = first_answer(
                self._rotation, self.open, deadline, self._backoff, self._options.connect_timeout
            )
            opening = self._opening = asyncio.create_task(first, name="cascade-mqtt-connect")
            try:
                connection = await opening  # raises ConnectError; nothing is left running
            except asyncio.CancelledError:
                if opening.done() and not opening.cancelled() and opening.exception() is None:
                    # the CONNACK came with the cancel: that connection is nobody's
                    await asyncio.shield(opening.result().close(graceful=True))
                if not given_up():
                    raise  # the caller was cancelled
                return  # disconnect() ended the attempt
            finally:
                self._opening = None
            if given_up():  # the CONNACK came with disconnect()'s cancel
                await connection.close(graceful=True)
                return
        self.started = True
        self._task = asyncio.create_task(self._supervise(connection), name="cascade-mqtt")
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(max(0.0, deadline - loop.time())):
                await attempted.wait()

    async def shut_down(self, flush_timeout: float, where: str) -> None:
        """Flush, publish the graceful offline, close, and discard what is still buffered.

        Never longer than ``flush_timeout`` plus about 1.5 s: the offline
        waits for its PUBACK 0.2 s to 1 s, and closing is bounded by the link.
        """
        presence, sender = self._presence, self._sender
        if self._online:
            deadline = time.monotonic() + flush_timeout
            try:
                await sender.flush(flush_timeout, where)
            except FlushTimeoutError:
                sender.discard()  # the counts are final from here: no later ack changes them
            connection = self._connection
            if self._online and presence.enabled and connection is not None:
                offline = presence.payload("offline", reason="shutdown")
                sent = connection.send(presence.topic, offline, 1, True)
                budget = max(0.2, min(1.0, deadline - time.monotonic()))
                await asyncio.wait({sent}, timeout=budget)
        await self._stop()
        sender.discard()

    def discard_unsent(self) -> None:
        """Drop (and count) what is buffered and unconfirmed now; publish() already drops."""
        self._sender.discard()

    async def _stop(self) -> None:
        """Close the connection (gracefully) and end every task; the connector is stopped."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        if self._rollcall is not None:
            await self._rollcall.close()
        if self.standby is not None:
            await self.standby.close()
        if self._closings:  # a DISCONNECT going out, or an attempt cut short and its thread
            await asyncio.wait(self._closings)
        if self._attempted is not None:
            self._attempted.set()  # a connect() waiting for the first attempt returns

    async def open(self, timeout: float | None = None) -> Connection:
        """One connection attempt to the current node with a new session.

        Raises ConnectError and leaves nothing open; ``timeout`` bounds it,
        if shorter than the connect timeout.
        """
        presence = self._presence
        presence.new_session()
        connection = Connection(
            self._make_link,
            self._options.link_settings(self.node, presence.will(), timeout),
            self._subscriptions.marker_topic(presence.session),
            settled=self._sender.settled,
            unreadable=self._unreadable,
            shed=self._shed,
        )
        try:
            await connection.open()
        except BaseException:
            await self._close(connection, graceful=False)
            raise
        return connection

    async def _close(self, connection: Connection, *, graceful: bool) -> None:
        """Close ``connection`` in a task that a cancellation does not stop.

        :func:`cancel_and_wait` cancels again every 0.1 s: a graceful close cut
        short there would lose the DISCONNECT, and the broker would publish the will.
        """
        task = asyncio.create_task(connection.close(graceful=graceful), name="cascade-mqtt-close")
        self._closings.add(task)
        task.add_done_callback(self._closings.discard)
        await asyncio.shield(task)

    async def _supervise(self, connection: Connection | None) -> None:
        """Keep a connection up until cancelled: connect, serve, and retry with backoff.

        The one place where a connection ends: whatever was tied to it is let go here.
        """
        assert self._attempted is not None
        short_lived = 0  # connections in a row that ended within backoff_max of their CONNACK
        loop = asyncio.get_running_loop()
        while True:
            if connection is None:
                try:
                    connection = await self.open()
                except ConnectError as exc:
                    if self._rotation.failed():  # another node to try in this round
                        self._log.warning("node-failed", "%s; trying %s next", exc, self.where)
                        continue
                    self._attempted.set()
                    if isinstance(exc, ConnectRefusedError):
                        delay = self._backoff.capped_delay()
                        self._log.error("refused", "%s; retrying in %.1f s", exc, delay)
                    else:
                        delay = self._backoff.next_delay()
                        self._log.warning("unreachable", "%s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    continue
            if self._ever_connected:
                self._stats.reconnects += 1
            self._ever_connected = True
            connected_at = loop.time()
            failure: LinkError | None = None
            self._connection = connection
            try:
                await self._serve(connection)
            except LinkError as exc:
                failure = exc
            finally:
                self._online = False
                if self._online_event is not None:
                    self._online_event.clear()
                self._connection = None
                connection.end()  # its direct messages' waiters are released
                self._subscriptions.lost(connection)  # its markers, its SUBSCRIBEs
                self._sender.lost()  # what it did not confirm is queued again
                if self.standby is not None and not self._closing:
                    self.standby.bridge()  # QoS 0 goes on through it until the next is served
                await self._close(connection, graceful=self._closing)
            connection = None
            self._rotation.lost()  # with several nodes, the next one is tried first
            uptime = loop.time() - connected_at
            stable = uptime >= self._backoff.maximum
            if stable:
                self._backoff.reset()
            short_lived = 0 if stable else short_lived + 1
            delay = self._backoff.next_delay()
            report_loss(self._log, self._rotation.served_last, short_lived, uptime, failure, delay)
            await asyncio.sleep(delay)

    async def _serve(self, connection: Connection) -> None:
        """Resubscribe, announce presence, then send and receive until the connection goes."""
        assert self._attempted is not None
        presence, sender, subscriptions = self._presence, self._sender, self._subscriptions
        own = [connection.marker_topic]
        if presence.enabled:
            own.append(presence.topic)
        # subscribed before the birth: another connector of this source id answers the birth at
        # once, and a subscription made after would miss that answer (and the retained status
        # the birth replaces), so this one would not know its peer
        await subscriptions.resubscribe(connection, own)
        self._online = True
        own_status = presence.topic if presence.enabled else None
        reader = connection.reader = asyncio.create_task(
            subscriptions.read(connection, own_status, self._answer_own_status),
            name="cascade-mqtt-reader",
        )
        birth = presence.birth()
        born = None if birth is None else connection.send(presence.topic, birth, 1, True)
        if self.standby is not None:
            await self.standby.hand_over()  # what it bridged goes first
        writer = asyncio.create_task(sender.run(connection), name="cascade-mqtt-sender")
        tasks = {reader, writer}
        try:
            if born is not None:
                # connect() returns once the broker holds the birth, so a reader that looks
                # next finds it retained; a link that goes first ends the reader or the writer
                await asyncio.wait(
                    {born, *tasks},
                    timeout=self._options.connect_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            self._attempted.set()
            if self._online_event is not None:
                self._online_event.set()
            moved_from = self._rotation.serve()
            if self.standby is not None:
                self.standby.follow(self._rotation.after_current)
            if moved_from is not None:
                _log.info("moved to broker node %s (from %s)", self.where, node_name(moved_from))
            _log.info(
                "connected to %s as %s (session %d)",
                self.where,
                presence.source_id,
                presence.session,
            )
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # a reader in a callback's disconnect() waits for us: it ends when the callback returns
            if connection.reader_closes:
                tasks.discard(reader)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            await asyncio.sleep(0)  # let aiomqtt's iterator finish cancelling its queue task
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, LinkError):
                    _log.error("connector task %s failed", task.get_name(), exc_info=exc)

    def _unreadable(self, topic: str, reason: str) -> None:
        """A message the link could not take in: counted in ``rejected``, logged (rate-limited)."""
        self._stats.rejected += 1
        self._log.warning(
            "unreadable",
            "rejected a message on %r from the broker: %s (RabbitMQ turns a '*' in a topic into "
            "'+')",
            topic,
            reason,
        )

    def _shed(self, count: int) -> None:
        """Received messages the callbacks were too far behind to take: counted, logged."""
        self._stats.shed += count
        self._log.warning(
            "shed",
            "the subscriptions fell behind what the broker delivers: %d message(s) discarded, "
            "oldest first (%d in all)",
            count,
            self._stats.shed,
        )

    def _announce_online(self) -> None:
        """Publish this session's birth again (a roll call), if online and not disconnecting."""
        connection = self._connection
        if connection is not None and self._online and self.started:
            connection.send(self._presence.topic, self._presence.online_again(), 1, True)

    def _answer_own_status(self, connection: Connection, raw: bytes) -> None:
        """Keep this source shown online while it lives (see :meth:`Presence.answer`).

        Never once disconnect() has begun: its offline must stay the last word.
        """
        if not self._online or not self.started:
            return
        online = self._presence.answer(raw)
        if online is not None:
            connection.send(self._presence.topic, online, 1, True)
