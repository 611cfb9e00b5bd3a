"""``PahoLink``: one MQTT connection over aiomqtt and paho, the only code that reaches into them.

aiomqtt has no public way to close a connection in every state, to fail an
attempt the broker hung up on, or to queue PUBLISH packets encoded in bulk;
paho has them privately. Each such reach is here, checked at run time
(``_compat.py``) and tested at the lowest and highest versions the pins allow.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, ClassVar, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttError
from paho.mqtt.client import MQTTMessage, MQTTMessageInfo
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cascade.connector_kit import bounded
from cascade.interfaces import ConnectError

from .._link import ConnectRefusedError, Incoming, LinkError, LinkHooks, LinkSettings
from ._compat import bulk_read_supported, check_aiomqtt, fast_wire_supported
from ._connect import ConnectThread, TrackingContext, disable_nagle, persistent_session
from ._reader import HAND_OUT_BYTES, HAND_OUT_EVERY, BulkReader
from ._reasons import describe_connect_failure, describe_failure, is_refusal

__all__ = ["PahoLink"]

_log = logging.getLogger("cascade.connectors.mqtt")
_T = TypeVar("_T")

_SUCCESS = 0  # paho's MQTT_ERR_SUCCESS
_PUBLISH = 0x30
_PENDING_CALLS_WARNED = 1_000  # subscriptions awaiting their SUBACK before aiomqtt warns


class PahoLink:
    """A :class:`~cascade.connectors.mqtt._link.Link` over one ``aiomqtt.Client``."""

    client_class: ClassVar[Any] = aiomqtt.Client
    """The client made for each connection (unit tests put a fake aiomqtt client here)."""

    def __init__(self, settings: LinkSettings, hooks: LinkHooks) -> None:
        self._settings = settings
        self._hooks = hooks
        will = aiomqtt.Will(*settings.will, 1, True) if settings.will is not None else None
        version = aiomqtt.ProtocolVersion.V5 if settings.mqtt5 else aiomqtt.ProtocolVersion.V311
        options: dict[str, Any] = {
            "username": settings.username,
            "password": settings.password,
            "identifier": settings.client_id,
            "protocol": version,
            "keepalive": settings.keepalive,
            "tls_context": settings.tls_context,
            "max_inflight_messages": settings.acked_window,
            **settings.client_options,
        }
        if settings.session_expiry is not None:
            options.update(persistent_session(settings.mqtt5, settings.session_expiry, options))
        self.client = client = self.client_class(
            settings.hostname,
            settings.port,
            will=will,
            # No timeout of aiomqtt's: it would wait through asyncio.wait_for, which before
            # Python 3.12 drops a cancellation that comes once the broker has answered (a
            # Ctrl-C lost, `cascade watch` never ending). This link bounds each wait itself.
            timeout=math.inf,
            logger=_log,
            **options,
        )
        # aiomqtt warns once more than 10 SUBSCRIBE/UNSUBSCRIBE calls wait for the broker's
        # answer; this connector makes that many at once by design (a constraints index is
        # read through 17 exact topics), so the warning said nothing a user could act on
        client.pending_calls_threshold = _PENDING_CALLS_WARNED
        self._paho = client._client
        self._loop = asyncio.get_running_loop()  # paho may ask from its connect thread
        self._thread: ConnectThread | None = None
        self._subscription_ids = settings.mqtt5
        self._fast_acks: set[int] = set()  # packet ids of QoS 1 messages the sender encoded
        self._incoming: deque[Incoming] = deque()  # received, not yet taken by messages()
        # The sheddable ones among them (live QoS 0 telemetry and logs), in the same order,
        # and their payloads' bytes; those shed stay in _incoming, skipped by messages() (by
        # id: each is alive there until it is skipped). Shedding thus never walks past the
        # messages it may not shed, however many wait before them (a dashboard that starts
        # beside a fleet gets tens of thousands of retained statuses and summaries first).
        self._sheddable: deque[Incoming] = deque()
        self._held = 0
        self._shed_ids: set[int] = set()
        self._unreported = 0  # shed, not yet told to the hooks (messages() tells them in bulk)
        self._waiter: asyncio.Future[None] | None = None  # messages() waits on it for more
        self._batches = fast_wire_supported(self._paho)
        self._bulk_read = bulk_read_supported(self._paho)
        self._hook()

    @classmethod
    def check(cls) -> None:
        """Raise ``RuntimeError`` if the installed aiomqtt lacks what this link relies on."""
        check_aiomqtt()

    @property
    def subscription_ids(self) -> bool:
        return self._subscription_ids

    @property
    def batches(self) -> bool:
        return self._batches

    def _hook(self) -> None:
        """Put the connector's hooks into paho's callbacks, forwarding to aiomqtt's."""
        client, paho, hooks = self.client, self._paho, self._hooks
        paho.connect_timeout = self._settings.connect_timeout
        on_socket_close = getattr(paho, "on_socket_close", None)

        def socket_closed(*args: Any) -> None:
            # The broker hung up before its CONNACK (a plaintext client on a TLS port gets a
            # reset): aiomqtt would wait out the whole timeout, so fail the attempt now.
            if on_socket_close is not None:
                on_socket_close(*args)
            connected = client._connected
            if not connected.done():
                error = MqttError("the broker closed the connection before answering")
                error.__cause__ = ConnectionResetError("connection closed by the broker")
                connected.set_exception(error)

        paho.on_socket_close = socket_closed
        on_socket_open = paho.on_socket_open

        def socket_opened(*args: Any) -> None:
            disable_nagle(args[2])  # (client, userdata, socket)
            if on_socket_open is not None:
                on_socket_open(*args)
            if self._bulk_read:  # queued after aiomqtt's add_reader, which this one replaces
                self._loop.call_soon_threadsafe(self._read_in_bulk, args[2])

        paho.on_socket_open = socket_opened
        paho.on_socket_register_write = self._register_writer
        if paho._ssl_context is not None:
            paho._ssl_context = TrackingContext(paho._ssl_context)
        paho.disable_logger()  # paho's per-packet debug logging costs the sender dearly
        forward = paho.on_publish

        def on_publish(*args: Any) -> None:
            # (client, userdata, mid, reason_code, properties): MQTT 5 PUBACKs carry a reason
            reason = args[3] if len(args) > 3 else None
            hooks.settled(args[2], reason if getattr(reason, "is_failure", False) else None)
            if forward is not None:
                forward(*args)

        paho.on_publish = on_publish
        paho.on_unsubscribe = None  # UNSUBACKs are not awaited (see unsubscribe)
        forward_connect = getattr(paho, "on_connect", None)

        def on_connect(*args: Any) -> None:
            # (client, userdata, flags, reason_code, properties): a broker without subscription
            # identifiers (AWS IoT Core) says so in the CONNACK and would refuse SUBSCRIBEs with one
            properties = args[4] if len(args) > 4 else None
            if getattr(properties, "SubscriptionIdentifierAvailable", 1) == 0:
                self._subscription_ids = False
            if forward_connect is not None:
                forward_connect(*args)

        paho.on_connect = on_connect
        paho.on_message = self._received  # instead of aiomqtt's: see messages()
        forward_subscribe = paho.on_subscribe
        waiting = getattr(client, "_pending_subscribes", None)
        if waiting is not None and forward_subscribe is not None:

            def on_subscribe(*args: Any) -> None:
                # (client, userdata, mid, ...): the SUBACK of a subscribe() cancelled meanwhile
                # has no waiter, and aiomqtt would log it as an error with a traceback.
                if args[2] in waiting:
                    forward_subscribe(*args)

            paho.on_subscribe = on_subscribe
        if not self._batches or self._settings.mqtt5:
            return  # QoS 1 goes through paho.publish() (MQTT 5 PUBACKs carry reason codes)
        handle_puback = paho._handle_pubackcomp
        fast_acks = self._fast_acks

        def on_puback(cmd: Any) -> Any:
            # MQTT 3.1.1 PUBACK: two bytes of packet id. Ours never were in paho's books.
            if cmd == "PUBACK":
                mid = int.from_bytes(paho._in_packet["packet"][:2], "big")
                if mid in fast_acks:
                    fast_acks.discard(mid)
                    hooks.settled(mid, None)
                    return _SUCCESS
            return handle_puback(cmd)

        paho._handle_pubackcomp = on_puback

    def _register_writer(self, paho: Any, userdata: Any, sock: Any) -> None:
        """paho has something to write on ``sock``: watch it for writability (aiomqtt's way).

        paho may ask from its connect thread, hence the hop onto the loop. By the time the loop
        gets to it, paho may have closed that socket (a DISCONNECT written, the broker gone):
        its descriptor is then closed or already another socket's, and registering it would log
        a ``KeyError``/``OSError`` from the loop (aiomqtt registers it regardless).
        """
        client = self.client

        def write() -> None:
            try:
                paho.loop_write()
            except Exception as exc:  # the connection broke: aiomqtt's reader ends it
                if not client._disconnected.done():
                    client._disconnected.set_exception(exc)

        def register() -> None:
            if paho._sock is sock:
                self._loop.add_writer(sock.fileno(), write)

        self._loop.call_soon_threadsafe(register)

    def _read_in_bulk(self, sock: Any) -> None:
        """Read ``sock`` with a :class:`BulkReader` instead of paho's ``loop_read``."""
        if self._paho._sock is not sock:
            return  # closed (or replaced) before the loop got here
        disconnected = self.client._disconnected

        def failed(exc: BaseException) -> None:
            if not disconnected.done():
                disconnected.set_exception(exc)

        reader = BulkReader(
            self._paho,
            sock,
            mqtt5=self._settings.mqtt5,
            deliver=self._deliver,
            unreadable=self._hooks.unreadable,
            failed=failed,
        )
        self._loop.add_reader(sock.fileno(), reader)

    # -- the connection -----------------------------------------------------------------

    async def open(self) -> None:
        settings = self._settings
        self._thread = ConnectThread(self.client)
        try:
            async with bounded(settings.connect_timeout):
                await self.client.__aenter__()
        except (MqttError, OSError, asyncio.TimeoutError, UnicodeError) as exc:
            # UnicodeError: a host name the resolver cannot encode (a label over 63 characters)
            reason = describe_connect_failure(exc, settings.connect_timeout)
            kind = ConnectRefusedError if is_refusal(exc) else ConnectError
            raise kind(settings.hostname, settings.port, reason) from exc

    def connected(self) -> bool:
        return bool(self._paho.is_connected())

    async def close(self, *, graceful: bool) -> None:
        """Release the client whatever its state: DISCONNECT if asked and possible, then close.

        An attempt that failed or was abandoned first gives up its connect
        thread. The release itself cannot be skipped: the caller may cancel
        again while the DISCONNECT waits for a hung broker.
        """
        if self._thread is not None:
            await self._thread.abandon()
        client, paho = self.client, self._paho
        disconnected = client._disconnected
        connected = paho.is_connected() and not disconnected.done()
        misc = client._misc_task
        try:
            if graceful and connected and paho.disconnect() == _SUCCESS:
                await asyncio.wait({disconnected}, timeout=0.5)
        finally:
            paho._reset_sockets()
            context: object = paho._ssl_context
            if isinstance(context, TrackingContext):
                context.close_all()  # paho leaks the TLS socket of a failed handshake
            if misc is not None:
                misc.cancel()
            for future in (client._connected, client._disconnected):
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: no "exception never retrieved" noise
            if client._lock.locked():
                client._lock.release()
        if misc is not None and not misc.done():
            await asyncio.wait({misc}, timeout=1.0)

    # -- sending ------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        info = self._paho.publish(topic, payload, qos, retain)
        return int(info.mid) if info.rc == _SUCCESS else None

    def queue_qos0(self, packets: bytes) -> int:
        paho = self._paho
        mid: int = paho._mid_generate()
        paho._packet_queue(_PUBLISH, packets, mid, 0, MQTTMessageInfo(mid))
        return mid

    def packet_id(self) -> int:
        return int(self._paho._mid_generate())

    def queue_qos1(self, packets: bytes, packet_ids: Sequence[int]) -> None:
        self._fast_acks.update(packet_ids)
        self._paho._packet_queue(_PUBLISH | 0x02, packets, 0, 1, None)

    def backlog(self) -> int:
        return len(self._paho._out_messages)

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(self, filters: Sequence[tuple[str, int | None]], qos: int) -> list[object]:
        """SUBSCRIBE at ``qos``; with subscription identifiers, one packet per filter (an id is
        per packet).

        The SUBACKs are waited for at most ``connect_timeout`` (see the client's ``timeout``),
        and no longer than the connection lasts: RabbitMQ closes it on a SUBSCRIBE its
        permissions deny, and aiomqtt would wait out its whole timeout for the answer.
        """
        client, timeout = self.client, self._settings.connect_timeout
        try:
            async with bounded(timeout):
                if not self._subscription_ids:
                    call = client.subscribe([(f, qos) for f, _ in filters])
                    return list(await self._unless_closed(call))
                subscribes = []
                for topic_filter, number in filters:
                    properties = None
                    if number is not None:
                        properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
                        properties.SubscriptionIdentifier = number
                    subscribes.append(client.subscribe(topic_filter, qos, properties=properties))
                gathered = asyncio.gather(*subscribes, return_exceptions=True)
                results = await self._unless_closed(gathered)
        except (MqttError, asyncio.TimeoutError) as exc:
            raise LinkError(describe_failure(exc, timeout)) from exc
        codes: list[object] = []
        for result in results:
            if isinstance(result, MqttError):
                raise LinkError(describe_failure(result, timeout)) from result
            if isinstance(result, BaseException):
                raise result
            codes.append(result[0] if result else None)
        return codes

    async def _unless_closed(self, answer: Awaitable[_T]) -> _T:
        """What ``answer`` gives; :class:`LinkError` as soon as the connection goes first."""
        disconnected = self.client._disconnected
        waiting = asyncio.ensure_future(answer)
        try:
            done, _ = await asyncio.wait(
                {waiting, disconnected}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not waiting.done():
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
        if waiting in done:
            return waiting.result()
        failure = None if disconnected.cancelled() else disconnected.exception()
        if isinstance(failure, Exception):
            raise LinkError(describe_failure(failure, self._settings.connect_timeout)) from failure
        raise LinkError("the connection was closed before the broker answered")

    def unsubscribe(self, topic_filter: str) -> None:
        self._paho.unsubscribe(topic_filter)

    def _received(self, client: Any, userdata: Any, message: MQTTMessage) -> None:
        """paho's on_message: queue the message for :meth:`messages`, in order.

        In place of aiomqtt's, whose iterator makes a task per message (the
        receive path's main cost), and which raises on a topic name MQTT does
        not allow, ending the connection: RabbitMQ makes one of a ``*``
        ("task/api_*" arrives as "task/api_+"). Such a message is reported
        through the hooks, and the connection goes on.
        """
        raw_topic: bytes = message._topic  # as received: .topic may not decode
        try:
            topic = raw_topic.decode()
        except UnicodeDecodeError as exc:
            self._hooks.unreadable(raw_topic.decode(errors="replace"), f"not UTF-8 ({exc})")
            return
        if "+" in topic or "#" in topic:
            self._hooks.unreadable(topic, "a topic name with a wildcard in it")
            return
        numbers = getattr(message.properties, "SubscriptionIdentifier", None) or ()
        ids = (numbers,) if isinstance(numbers, int) else tuple(numbers)
        payload = message.payload
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        self._deliver(Incoming(topic, payload, message.qos, message.retain, ids))

    def _deliver(self, message: Incoming) -> None:
        """Queue ``message`` for :meth:`messages`; past the bound, shed the oldest telemetry."""
        self._incoming.append(message)
        if _sheddable(message):
            self._sheddable.append(message)
            self._held += len(message.payload)
            if self._held > self._settings.receive_buffer:
                self._shed()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _shed(self) -> None:
        sheddable, shed_ids, shed = self._sheddable, self._shed_ids, 0
        while self._held > self._settings.receive_buffer and sheddable:
            message = sheddable.popleft()
            self._held -= len(message.payload)
            shed_ids.add(id(message))
            shed += 1
        # told once a turn of messages() (before it hands out the next message), not once a
        # message: a reader behind sheds about each message it reads, and a count and a
        # warning each cost it more than it could spare (issue 91)
        self._unreported += shed

    def _report_shed(self) -> None:
        if self._unreported:
            shed, self._unreported = self._unreported, 0
            self._hooks.shed(shed)

    async def messages(self) -> AsyncIterator[Incoming]:
        """What the socket's reader queued, in order; then LinkError once the connection is gone.

        Every few dozen messages (or 64 KiB of them) it lets the loop turn, so that the socket
        is read (into the bounded queue) while a backlog is worked through, and the broker
        never waits on us.
        """
        incoming, sheddable, shed_ids = self._incoming, self._sheddable, self._shed_ids
        disconnected = self.client._disconnected  # the future of this connection (see open)
        loop = asyncio.get_running_loop()
        handed = handed_bytes = 0
        while True:
            self._report_shed()
            while incoming:
                message = incoming.popleft()
                if shed_ids and id(message) in shed_ids:
                    shed_ids.discard(id(message))
                    continue
                size = len(message.payload)
                if sheddable and sheddable[0] is message:
                    sheddable.popleft()
                    self._held -= size
                yield message
                handed += 1
                handed_bytes += size
                if handed == HAND_OUT_EVERY or handed_bytes >= HAND_OUT_BYTES:
                    handed = handed_bytes = 0
                    await asyncio.sleep(0)
                    self._report_shed()  # what the reads of that turn shed
            if disconnected.done():
                break
            waiter = self._waiter = loop.create_future()
            wake = functools.partial(_resolve, waiter)
            disconnected.add_done_callback(wake)
            try:
                await waiter
            finally:
                disconnected.remove_done_callback(wake)
                self._waiter = None
                self._report_shed()
        self._report_shed()
        failure = None if disconnected.cancelled() else disconnected.exception()
        if isinstance(failure, Exception):
            raise LinkError(describe_failure(failure, self._settings.connect_timeout)) from failure
        raise LinkError("the connection was closed")


def _resolve(waiter: asyncio.Future[None], _: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _sheddable(message: Incoming) -> bool:
    """Whether a reader that fell behind may shed ``message``: a live QoS 0 message of the
    telemetry or the logs, whose losses readers see as gaps in their numbers. Never a QoS 1
    one (acknowledged to the broker already), a retained one, or any other kind (statuses,
    constraints, commands, answers: on a clean session they too arrive at QoS 0)."""
    if message.qos or message.retain:
        return False
    topic = message.topic
    return "/telemetry/" in topic or "/logs/" in topic
