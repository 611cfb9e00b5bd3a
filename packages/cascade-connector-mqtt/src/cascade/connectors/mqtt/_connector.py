"""``MqttConnector``: Cascade's :class:`~cascade.interfaces.Connector` over aiomqtt 2.x."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal

from typing_extensions import Self

from cascade.interfaces import (
    DEFAULT_PREFIX,
    ConnectError,
    ConnectorStats,
    FlushTimeoutError,
    InvalidMessageError,
    MessageCallback,
    Payload,
    StatusMessage,
    SyncCallback,
    decode_status,
    status_topic,
)
from cascade.interfaces.connector_kit import (
    Dispatcher,
    PresenceGuard,
    RateLimitedLogger,
    Subscription,
    default_source_id,
    encode_payload,
    sanitize_segment,
    validate_id,
    validate_prefix,
    validate_topic,
)
from cascade.interfaces.connector_kit import timeout as bounded

from ._backoff import Backoff
from ._buffer import Outgoing, OutgoingBuffer
from ._client import (
    ConnectThread,
    TrackingContext,
    check_aiomqtt,
    disable_nagle,
    fast_wire_supported,
)
from ._confirm import Confirmations, confirmation_topic
from ._reasons import ConnectRefusedError, describe_connect_failure, describe_failure, is_refusal
from ._wire import encode_publish, publish_qos0_parts

try:
    import aiomqtt
    from aiomqtt.exceptions import MqttError
    from paho.mqtt.client import MQTTMessageInfo
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    _IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - aiomqtt is a dependency
    _IMPORT_ERROR = exc

__all__ = ["MqttConnector"]

_log = logging.getLogger("cascade.connectors.mqtt")

_SUCCESS = 0  # paho's MQTT_ERR_SUCCESS
_BATCH = 2048  # messages handed to the client before the sender lets the event loop write
_BATCH_BYTES = 64 * 1024  # QoS 0 bytes per paho packet
_PUBLISH = 0x30
_ACKED_WINDOW = 100  # QoS 1/2 messages in paho at once (measured best; paho is O(n) per PUBACK)
_MANAGED_OPTIONS = frozenset({"will", "timeout", "hostname", "port", "logger"})


def _protocol_version(value: object) -> aiomqtt.ProtocolVersion:
    if isinstance(value, aiomqtt.ProtocolVersion):
        return value
    versions = {
        "3.1.1": aiomqtt.ProtocolVersion.V311,
        "311": aiomqtt.ProtocolVersion.V311,
        "4": aiomqtt.ProtocolVersion.V311,
        "5": aiomqtt.ProtocolVersion.V5,
        "5.0": aiomqtt.ProtocolVersion.V5,
    }
    version = versions.get(str(value))
    if version is None:
        raise ValueError(f"protocol must be '3.1.1' or '5' (MQTT version), not {value!r}")
    return version


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has really ended.

    aiomqtt awaits the broker through ``asyncio.wait_for``, which before
    Python 3.12 drops a cancellation that arrives just as the broker answers
    (seen: CONNACK right after a hung broker resumed). One ``cancel()`` may
    therefore be lost; cancel again until the task is done.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)


def _foreign(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` belongs to another event loop than the running one."""
    return task.get_loop() is not asyncio.get_running_loop()


def _next_session(previous: int) -> int:
    """Milliseconds since the epoch, and always above ``previous``.

    A time-based start makes sessions rise across processes of one source
    (a restarted engine with the same source id) without reading the
    broker first; within a process they rise by at least one per CONNECT.
    """
    return max(previous + 1, time.time_ns() // 1_000_000)


class MqttConnector:
    """A :class:`~cascade.interfaces.Connector` over MQTT, safe inside a workflow engine.

    ``MqttConnector(hostname, port=1883, **options)``. Options:

    - ``username``, ``password``: credentials.
    - ``tls``: ``True`` for TLS with the system's CAs (or ``tls_ca_file``), or an
      :class:`ssl.SSLContext`; ``tls_ca_file``: a CA bundle to trust (implies TLS).
    - ``keepalive`` (seconds, 60), ``protocol`` (``"3.1.1"`` or ``"5"``).
    - ``client_id`` or ``identifier``: the MQTT client id (random by default).
    - ``topic_prefix`` (``cascade``), ``source_id`` (``<hostname>-<pid>``, sanitized):
      valid UTF-8 and at most ``MAX_ID_BYTES`` (1,024) bytes each, or ``ValueError``.
    - ``presence`` (``True``): announce this source under ``{prefix}/status/``
      (birth, will, graceful offline). Clients that only watch or control,
      such as the CLI, turn it off so they leave no status behind.
    - ``buffer_size``: messages kept while the broker is slow or away (10,000;
      a full buffer drops the oldest). ``max_in_flight``: messages handed to
      the MQTT client and not yet confirmed (1,000).
    - ``backoff_initial``, ``backoff_max``: reconnection delay bounds (0.1 s, 30 s).
      The delay doubles with every failed attempt and with every connection
      lost within ``backoff_max`` of its CONNACK; only a connection that stayed
      up that long starts it again from ``backoff_initial``. So a broker that
      drops each connection right after accepting it (another client taking
      over the same client id, an ACL) gets, after a few quick retries, one
      every ``backoff_max / 2`` to ``backoff_max`` seconds, not ten a second,
      and a rate-limited warning. Two clients sharing an id each stay up only
      until the other's next retry, at most ``backoff_max`` later, so their
      contest never resets the delay.
    - ``connect_timeout`` (5 s): the longest ``connect()`` waits, also the
      bound of each connection attempt. ``flush_timeout`` (5 s): how long
      ``disconnect()`` tries to deliver what is buffered.
    - Anything else is passed to :class:`aiomqtt.Client`.

    ``connect()`` never raises for network faults: it waits up to the connect
    timeout for the broker and keeps trying in the background. With
    ``require=True`` (for a CLI) it raises :class:`~cascade.interfaces.ConnectError`
    with the cause instead, and the connector stays disconnected.
    """

    def __init__(
        self,
        hostname: str,
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool | ssl.SSLContext = False,
        tls_ca_file: str | None = None,
        keepalive: int = 60,
        protocol: object = "3.1.1",
        client_id: str | None = None,
        identifier: str | None = None,
        topic_prefix: str = DEFAULT_PREFIX,
        source_id: str | None = None,
        presence: bool = True,
        buffer_size: int = 10_000,
        max_in_flight: int = 1_000,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        connect_timeout: float = 5.0,
        flush_timeout: float = 5.0,
        **client_options: Any,
    ) -> None:
        if _IMPORT_ERROR is not None:
            raise ImportError(
                "MqttConnector needs aiomqtt: pip install cascade-connector-mqtt "
                "(or cascade-runtime[mqtt])"
            ) from _IMPORT_ERROR
        managed = _MANAGED_OPTIONS & client_options.keys()
        if managed:
            raise TypeError(f"MqttConnector sets these aiomqtt options itself: {sorted(managed)}")
        if client_id is not None and identifier is not None and client_id != identifier:
            raise ValueError("give client_id or identifier, not two different ids")
        if connect_timeout <= 0 or flush_timeout < 0:
            raise ValueError("timeouts must be positive")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.hostname = hostname
        self.port = port
        self.username = username
        self.keepalive = keepalive
        self.identifier = client_id if client_id is not None else identifier
        self.protocol = _protocol_version(protocol)
        self.connect_timeout = connect_timeout
        self.flush_timeout = flush_timeout
        self.max_in_flight = max_in_flight
        self._password = password
        self._tls_context = self._make_tls_context(tls, tls_ca_file)
        self._client_options = client_options
        source = validate_id(source_id, "source_id") if source_id else default_source_id()
        self._source_id = sanitize_segment(source)
        self._prefix = validate_prefix(topic_prefix)
        self._status_topic = status_topic(self._source_id, self._prefix)
        self._presence = presence
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._stats = ConnectorStats()
        self._buffer = OutgoingBuffer(buffer_size)
        self._confirmations = Confirmations(self._buffer, max_in_flight // 4)  # of QoS 0 messages
        self._dispatcher = Dispatcher(self._stats, self._unsubscribe_at_broker, _log)
        self._log = RateLimitedLogger(_log)
        self._session = 0
        self._presence_guard = PresenceGuard()
        self._started = False
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None  # see _connecting
        self._opening: asyncio.Task[aiomqtt.Client] | None = None  # connect(require=True)'s attempt
        self._disconnects = 0  # disconnect() calls: a connect() called before one gives up
        self._stopping: asyncio.Task[None] | None = None  # a disconnect()'s shutdown under way
        self._discards: set[asyncio.Task[None]] = set()  # failed attempts being closed
        self._closing = False
        self._ever_connected = False
        self._supervisor: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._online = False
        self._online_event: asyncio.Event | None = None
        self._attempted: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._direct: dict[int, asyncio.Future[None]] = {}
        self._markers: dict[bytes, asyncio.Future[None]] = {}
        self._marker_actions: dict[bytes, Callable[[], None]] = {}  # run by the reader on arrival
        self._marker_ids = itertools.count(1)
        self._marker_topic = ""
        self._confirm_topic = ""
        # source and session may be shared: other connectors of this process, same millisecond
        self._marker_nonce = uuid.uuid4().hex
        self._reader_task: asyncio.Task[None] | None = None
        # the reader whose callback called disconnect(): left to end by itself
        self._closing_reader: asyncio.Task[None] | None = None
        self._fast_acks: set[int] = set()  # packet ids of QoS 1 messages we encoded ourselves
        self._fast_wire = False
        self._direct_topics: dict[int, str] = {}  # packet id → topic of direct QoS 1+ messages
        self._refused_topics: set[str] = set()  # topics whose refusal was reported
        # MQTT 5 subscription identifiers: one per filter for the connector's life, so that a
        # copy sent for a filter unsubscribed and subscribed again still finds it
        self._use_subscription_ids = False  # this connection's: MQTT 5 and the broker has them
        self._subscription_ids: dict[str, int] = {}
        self._id_filters: dict[int, str] = {}
        self._next_subscription_id = itertools.count(1)

    @staticmethod
    def _make_tls_context(
        tls: bool | ssl.SSLContext, tls_ca_file: str | None
    ) -> ssl.SSLContext | None:
        if isinstance(tls, ssl.SSLContext):
            return tls
        if tls or tls_ca_file is not None:
            return ssl.create_default_context(cafile=tls_ca_file)
        return None

    # -- the Connector protocol's properties --------------------------------------------

    @property
    def source_id(self) -> str:
        """This process's id in the protocol (``<hostname>-<pid>`` by default)."""
        return self._source_id

    @property
    def topic_prefix(self) -> str:
        """The first topic level(s) of every Cascade topic."""
        return self._prefix

    @property
    def is_connected(self) -> bool:
        """Whether the broker connection is up (and presence announced) right now."""
        return self._online

    @property
    def stats(self) -> ConnectorStats:
        """The connector's counters (``buffered`` is computed when read)."""
        self._stats.buffered = len(self._buffer)
        self._stats.resent = self._buffer.resent
        return self._stats

    @property
    def session(self) -> int:
        """The presence session number of the current (or last) connection; 0 before any."""
        return self._session

    # -- lifecycle ----------------------------------------------------------------------

    async def connect(self, *, require: bool = False) -> None:
        """Start connecting; return once connected, or after ``connect_timeout`` at most.

        Without ``require`` a broker that is down or refuses is not an error:
        the connector keeps trying in the background (with backoff) and
        publishes are buffered meanwhile. With ``require=True`` the first
        attempt's failure raises :class:`~cascade.interfaces.ConnectError`
        naming host, port and cause, and nothing keeps running. Idempotent,
        also while connecting: a second call waits for the first (and tries
        itself only if the first raised).

        A ``disconnect()`` while connecting wins: the pending calls end at
        once (returning, or with ``require=True`` raising
        :class:`~cascade.interfaces.ConnectError`) and the connector stays
        disconnected. A ``connect()`` while a ``disconnect()`` is under way
        starts once it has finished.
        """
        check_aiomqtt()
        disconnects = self._disconnects
        ran = False
        async with self._connecting():
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
            supervisor = self._supervisor
            if self._started and (supervisor is None or supervisor.done() or _foreign(supervisor)):
                self._started = False  # an earlier event loop ended without disconnect()
            if not self._started and self._disconnects == disconnects:
                await self._connect(require, disconnects)
                ran = True
        if not require:
            return
        if self._disconnects != disconnects:
            raise ConnectError(self.hostname, self.port, "disconnect() was called while connecting")
        if not ran and not self._ever_connected:  # an earlier connect() without require
            raise ConnectError(
                self.hostname, self.port, "not connected yet: an earlier connect() keeps trying"
            )

    def _connecting(self) -> asyncio.Lock:
        """The lock connect() holds, one per event loop (a lock is bound to its loop)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def _connect(self, require: bool, disconnects: int) -> None:
        """Start the supervisor, after a first attempt if required; wait for its first attempt."""
        self._closing = False
        self._ever_connected = False
        self._wake = asyncio.Event()
        self._attempted = asyncio.Event()
        self._online_event = asyncio.Event()
        self._backoff.reset()
        client: aiomqtt.Client | None = None
        deadline = asyncio.get_running_loop().time() + self.connect_timeout
        if require:
            # in a task of its own, so that disconnect() can end it
            opening = self._opening = asyncio.create_task(self._open(), name="cascade-mqtt-connect")
            try:
                client = await opening  # raises ConnectError; nothing is left running
            except asyncio.CancelledError:
                if opening.done() and not opening.cancelled() and opening.exception() is None:
                    # the CONNACK came with the cancel: that connection is nobody's
                    await asyncio.shield(self._close_client(opening.result(), graceful=True))
                if self._disconnects == disconnects:
                    raise  # the caller was cancelled
                return  # disconnect() ended the attempt
            finally:
                self._opening = None
            if self._disconnects != disconnects:  # the CONNACK came with disconnect()'s cancel
                await self._close_client(client, graceful=True)
                return
        self._started = True
        self._supervisor = asyncio.create_task(self._supervise(client), name="cascade-mqtt")
        # then presence and subscriptions, within what is left of the timeout
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(remaining):
                await self._attempted.wait()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until the connection is up (presence announced, subscriptions remade).

        Returns ``False`` if it is not up within ``timeout`` seconds or the
        connector is not started. For callers that want to know when
        telemetry flows again; publishing never needs it.
        """
        event = self._online_event
        if not self._started or event is None:
            return False
        try:
            async with bounded(timeout):
                await event.wait()
        except asyncio.TimeoutError:
            return False
        return True

    async def disconnect(self) -> None:
        """Flush (up to ``flush_timeout``), publish a graceful offline, and close. Idempotent.

        Never hangs: a broker that is hung or gone costs at most the flush
        timeout plus about 1.5 s (offline status, then DISCONNECT). Messages
        still buffered are discarded and counted as dropped. Called from a
        subscription callback, it completes the same way and returns; that
        connection's subscribe loop stops when the callback returns.
        """
        self._disconnects += 1
        if not self._started:
            if self._opening is not None:  # connect(require=True) waits for its CONNACK
                await _cancel(self._opening)
            if self._discards:
                await asyncio.wait(self._discards)
            if self._stopping is not None:  # another disconnect() is under way
                await asyncio.shield(self._stopping)
            return
        self._started = False  # from here on, publish() drops
        if asyncio.current_task() is self._reader_task:
            # a callback runs in the reader, which the supervisor cancels and waits for
            self._closing_reader = self._reader_task
        # In a task of its own: a caller cancelled while it flushes must not leave it half done.
        stopping = self._stopping = asyncio.create_task(self._shut_down(), name="cascade-mqtt-stop")
        stopping.add_done_callback(self._stopped)
        await asyncio.shield(stopping)

    def _stopped(self, stopping: asyncio.Task[None]) -> None:
        if self._stopping is stopping:
            self._stopping = None

    async def _shut_down(self) -> None:
        """disconnect()'s work: flush, offline, stop the supervisor, discard what is left."""
        client = self._client
        if self._online and client is not None:
            deadline = time.monotonic() + self.flush_timeout
            with contextlib.suppress(FlushTimeoutError):
                await self.flush(self.flush_timeout)
            if self._online and self._presence:
                offline = self._status_payload("offline", reason="shutdown")
                sent = self._publish_direct(client, self._status_topic, offline, 1, True)
                budget = max(0.2, min(1.0, deadline - time.monotonic()))
                await asyncio.wait({sent}, timeout=budget)
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await _cancel(supervisor)
        if self._discards:  # an attempt cut short: its socket is closed once its thread is done
            await asyncio.wait(self._discards)
        if self._attempted is not None:
            self._attempted.set()  # a connect() waiting for the first attempt returns
        lost = self._buffer.clear()
        if lost:
            self._stats.dropped += lost
            _log.warning("disconnect discarded %d unsent messages", lost)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    # -- connections --------------------------------------------------------------------

    def _status_payload(
        self,
        status: Literal["online", "offline"],
        reason: str | None = None,
        conflict_session: int | None = None,
    ) -> bytes:
        message = StatusMessage.announce(
            status, self._source_id, self._session, reason, conflict_session
        )
        return encode_payload(message)

    def _new_client(self) -> aiomqtt.Client:
        """An aiomqtt client whose will is this session's retained ``offline``."""
        will = (
            aiomqtt.Will(self._status_topic, self._status_payload("offline"), 1, True)
            if self._presence
            else None
        )
        options: dict[str, Any] = {
            "username": self.username,
            "password": self._password,
            "identifier": self.identifier,
            "protocol": self.protocol,
            "keepalive": self.keepalive,
            "tls_context": self._tls_context,
            "max_inflight_messages": min(self.max_in_flight, _ACKED_WINDOW),  # paho's own QoS 1
            **self._client_options,
        }
        client = aiomqtt.Client(
            self.hostname,
            self.port,
            will=will,
            timeout=self.connect_timeout,
            logger=_log,
            **options,
        )
        paho = client._client
        paho.connect_timeout = self.connect_timeout
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

        paho.on_socket_open = socket_opened
        if paho._ssl_context is not None:
            paho._ssl_context = TrackingContext(paho._ssl_context)  # type: ignore[assignment]
        paho.disable_logger()  # paho's per-packet debug logging costs the sender dearly
        forward = paho.on_publish

        def on_publish(*args: Any) -> None:
            # (client, userdata, mid, reason_code, properties): MQTT 5 PUBACKs carry a reason
            reason = args[3] if len(args) > 3 else None
            self._on_publish(args[2], reason if getattr(reason, "is_failure", False) else None)
            if forward is not None:
                forward(*args)

        paho.on_publish = on_publish
        paho.on_unsubscribe = None  # UNSUBACKs are not awaited (_unsubscribe_at_broker)
        self._use_subscription_ids = self.protocol == aiomqtt.ProtocolVersion.V5
        forward_connect = getattr(paho, "on_connect", None)

        def on_connect(*args: Any) -> None:
            # (client, userdata, flags, reason_code, properties): a broker without subscription
            # identifiers (AWS IoT Core) says so in the CONNACK and would refuse SUBSCRIBEs with one
            properties = args[4] if len(args) > 4 else None
            if getattr(properties, "SubscriptionIdentifierAvailable", 1) == 0:
                self._use_subscription_ids = False
            if forward_connect is not None:
                forward_connect(*args)

        paho.on_connect = on_connect
        forward_subscribe = paho.on_subscribe
        waiting = getattr(client, "_pending_subscribes", None)
        if waiting is not None and forward_subscribe is not None:

            def on_subscribe(*args: Any) -> None:
                # (client, userdata, mid, ...): the SUBACK of a subscribe() cancelled meanwhile
                # has no waiter, and aiomqtt would log it as an error with a traceback.
                if args[2] in waiting:
                    forward_subscribe(*args)

            paho.on_subscribe = on_subscribe
        self._fast_wire = fast_wire_supported(paho)
        if not self._fast_wire:
            self._log.warning("slow-path", "paho internals changed: sending through publish()")
        elif self.protocol == aiomqtt.ProtocolVersion.V311:
            handle_puback = paho._handle_pubackcomp
            fast_acks = self._fast_acks

            def on_puback(cmd: Any) -> Any:
                # MQTT 3.1.1 PUBACK: two bytes of packet id. Ours never were in paho's books.
                if cmd == "PUBACK":
                    mid = int.from_bytes(paho._in_packet["packet"][:2], "big")
                    if mid in fast_acks:
                        fast_acks.discard(mid)
                        self._on_publish(mid)
                        return _SUCCESS
                return handle_puback(cmd)

            paho._handle_pubackcomp = on_puback  # type: ignore[method-assign]
        return client

    async def _open(self) -> aiomqtt.Client:
        """One connection attempt with a new session; raises ConnectError, leaves nothing open."""
        self._session = _next_session(self._session)
        client = self._new_client()
        thread = ConnectThread(client)
        try:
            async with bounded(self.connect_timeout):
                await client.__aenter__()
        except (MqttError, OSError, asyncio.TimeoutError) as exc:
            await self._discard(client, thread)
            context: object = client._client._ssl_context
            if isinstance(context, TrackingContext):
                context.close_all()  # paho leaks the TLS socket of a failed handshake
            reason = describe_connect_failure(exc, self.connect_timeout)
            kind = ConnectRefusedError if is_refusal(exc) else ConnectError
            raise kind(self.hostname, self.port, reason) from exc
        except BaseException:
            await self._discard(client, thread)
            raise
        return client

    async def _discard(self, client: aiomqtt.Client, thread: ConnectThread) -> None:
        """Close a client whose connection attempt failed or was abandoned.

        In a task of its own, which a cancellation does not stop and which
        disconnect() waits for.
        """

        async def discard() -> None:
            await thread.abandon()
            await self._close_client(client, graceful=False)

        task = asyncio.create_task(discard(), name="cascade-mqtt-discard")
        self._discards.add(task)
        task.add_done_callback(self._discards.discard)
        await asyncio.shield(task)

    async def _close_client(self, client: aiomqtt.Client, *, graceful: bool) -> None:
        """Release a client whatever its state: DISCONNECT if asked and possible, then close.

        The release itself cannot be skipped: ``_cancel`` may cancel again
        while the DISCONNECT waits for a hung broker.
        """
        paho = client._client
        disconnected = client._disconnected
        connected = paho.is_connected() and not disconnected.done()
        misc = client._misc_task
        try:
            if graceful and connected and paho.disconnect() == _SUCCESS:
                await asyncio.wait({disconnected}, timeout=0.5)
        finally:
            paho._reset_sockets()
            if misc is not None:
                misc.cancel()
            for future in (client._connected, client._disconnected):
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: no "exception never retrieved" noise
            if client._lock.locked():
                client._lock.release()
        if misc is not None and not misc.done():
            await asyncio.wait({misc}, timeout=1.0)

    async def _supervise(self, client: aiomqtt.Client | None) -> None:
        """Keep a connection up until cancelled: connect, serve, and retry with backoff."""
        assert self._attempted is not None
        short_lived = 0  # connections in a row that ended within backoff_max of their CONNACK
        while True:
            if client is None:
                try:
                    client = await self._open()
                except ConnectError as exc:
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
            connected_at = asyncio.get_running_loop().time()
            failure: MqttError | None = None
            try:
                await self._serve(client)
            except MqttError as exc:
                failure = exc
            finally:
                self._online = False
                if self._online_event is not None:
                    self._online_event.clear()
                self._client = None
                self._confirmations.asked()  # nothing to ask on this connection any more
                given_up, overflow = self._buffer.requeue()
                if given_up is not None:
                    self._stats.dropped += 1
                    _log.warning(
                        "gave up a message to %r: the connection was lost each of the %d times "
                        "it was sent alone (does the broker close connections it refuses?)",
                        given_up.topic,
                        self._buffer.max_losses,
                    )
                if overflow:
                    self._stats.dropped += overflow
                    _log.warning(
                        "outgoing buffer full (%d messages) with the unconfirmed ones put back: "
                        "dropped the %d oldest",
                        self._buffer.maxsize,
                        overflow,
                    )
                self._fail_pending()
                await self._close_client(client, graceful=self._closing)
            client = None
            uptime = asyncio.get_running_loop().time() - connected_at
            stable = uptime >= self._backoff.maximum
            if stable:
                self._backoff.reset()
            short_lived = 0 if stable else short_lived + 1
            delay = self._backoff.next_delay()
            if short_lived > 1:  # accepted again and dropped again: the broker refuses us
                self._log.warning(
                    "unstable-repeated",
                    "the broker at %s:%d accepted and then closed %d connections in a row, this "
                    "one after %.1f s (%s; another client with the same client id? an ACL?); "
                    "retrying in %.1f s",
                    self.hostname,
                    self.port,
                    short_lived,
                    uptime,
                    failure or "closed",
                    delay,
                )
            elif short_lived:  # once proves nothing: a broker that went away looks the same
                self._log.warning(
                    "unstable",
                    "the connection to %s:%d ended %.1f s after the broker accepted it (%s); "
                    "retrying in %.1f s",
                    self.hostname,
                    self.port,
                    uptime,
                    "closed"
                    if failure is None
                    else describe_failure(failure, self.connect_timeout),
                    delay,
                )
            elif failure is None:
                _log.warning("lost the connection to %s:%d; reconnecting", self.hostname, self.port)
            else:
                _log.warning(
                    "connection to %s:%d failed (%s); reconnecting",
                    self.hostname,
                    self.port,
                    describe_failure(failure, self.connect_timeout),
                )
            await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Announce presence, resubscribe, then send and receive until the connection goes."""
        assert self._wake is not None
        assert self._attempted is not None
        self._client = client
        self._fast_acks.clear()
        if self._presence:
            online = self._status_payload("online")
            self._publish_direct(client, self._status_topic, online, 1, True)
            self._presence_guard.started(self._session)
        marker_level = f"{self._session}-{self._marker_nonce}"
        self._marker_topic = f"{self._prefix}/_marker/{self._source_id}/{marker_level}"
        self._confirm_topic = confirmation_topic(self._marker_topic)
        subscribed: set[str] = set()
        wanted = [*self._own_filters(), *self._dispatcher.filters]
        self._dispatcher.sync("begin")
        while wanted:  # filters may be added while we wait for the SUBACK
            await self._subscribe(client, wanted)
            subscribed.update(wanted)
            wanted = [f for f in self._dispatcher.filters if f not in subscribed]
        if self._dispatcher.syncing:
            self._send_marker(client, lambda: self._dispatcher.sync("end"))
        self._online = True
        self._attempted.set()
        if self._online_event is not None:
            self._online_event.set()
        _log.info(
            "connected to %s:%d as %s (session %d)",
            self.hostname,
            self.port,
            self._source_id,
            self._session,
        )
        reader = asyncio.create_task(self._read(client), name="cascade-mqtt-reader")
        sender = asyncio.create_task(self._send(client), name="cascade-mqtt-sender")
        self._reader_task = reader
        self._wake.set()
        tasks = {reader, sender}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._reader_task = None
            # a reader in a callback's disconnect() waits for us: it ends when the callback returns
            if self._closing_reader is not None:
                tasks.discard(self._closing_reader)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            await asyncio.sleep(0)  # let aiomqtt's iterator finish cancelling its queue task
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, MqttError):
                    _log.error("connector task %s failed", task.get_name(), exc_info=exc)

    def _own_filters(self) -> list[str]:
        """What the connector subscribes to for itself: its markers, its status (stale wills)."""
        return [self._marker_topic, self._status_topic] if self._presence else [self._marker_topic]

    def _fail_pending(self) -> None:
        for future in [*self._direct.values(), *self._markers.values()]:
            if not future.done():
                future.set_result(None)
        self._direct.clear()
        self._direct_topics.clear()
        self._markers.clear()
        self._marker_actions.clear()

    # -- sending ------------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        """Queue a message for the broker and return at once; never waits on the network.

        Mappings and schema objects go as JSON, ``str``/``bytes`` as they are.
        Before ``connect()`` (or after ``disconnect()``) the message is
        dropped, counted and logged. A full buffer drops its oldest message.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        validate_topic(topic)
        raw = encode_payload(payload)
        if not self._started:
            self._stats.dropped += 1
            self._log.warning("not-connected", "publish to %r while not connected: dropped", topic)
            return
        if self._buffer.add(topic, raw, qos, retain):
            self._stats.dropped += 1
            self._log.warning(
                "buffer-full",
                "outgoing buffer full (%d messages): dropped the oldest",
                self._buffer.maxsize,
            )
        wake = self._wake
        if wake is not None:
            wake.set()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker accepted everything published so far (PUBACK for QoS 1+).

        Raises :class:`~cascade.interfaces.FlushTimeoutError` after ``timeout``
        seconds (default: the connector's ``flush_timeout``). Messages dropped
        from a full buffer count as settled.
        """
        if timeout is None:
            timeout = self.flush_timeout
        done = self._buffer.wait_for(self._buffer.last_seq)
        if not done.done():
            self._confirmations.want(self._wake)  # QoS 0 messages wait for a broker's answer
        try:
            async with bounded(timeout):
                await done
        except asyncio.TimeoutError:
            raise FlushTimeoutError(
                f"{len(self._buffer)} messages not yet accepted by {self.hostname}:{self.port} "
                f"after {timeout:g} s"
            ) from None

    def _publish_direct(
        self, client: aiomqtt.Client, topic: str, raw: bytes, qos: int, retain: bool
    ) -> asyncio.Future[None]:
        """Hand a message straight to the client, outside the buffer; the future ends when sent."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        info = client._client.publish(topic, raw, qos, retain)
        if info.rc == _SUCCESS:
            self._direct[info.mid] = future
            if qos:
                self._direct_topics[info.mid] = topic
        else:
            future.set_result(None)
        return future

    def _on_publish(self, mid: int, refusal: object = None) -> None:
        """paho's on_publish: a message was written (QoS 0) or acknowledged (QoS 1, 2).

        An acknowledgement also confirms the QoS 0 messages written before
        the acknowledged packet (see ``_confirm.py``); ``published`` counts
        messages once confirmed. ``refusal`` is the reason code of a PUBACK
        that refused the message (MQTT 5, e.g. "Not authorized" from an ACL):
        counted in ``refused``, and reported once per topic. A refused
        confirmation request still confirms what was written before it.
        """
        buffer = self._buffer
        refused = 0
        if refusal is not None:
            messages = buffer.in_flight.get(mid)
            if messages:
                refused = len(messages)
                self._refused(messages[0].topic, refusal, refused)
            elif mid in self._direct_topics:
                self._refused(self._direct_topics[mid], refusal, 1)
        self._direct_topics.pop(mid, None)
        settled = buffer.confirm(mid)
        if settled:
            self._stats.published += settled - refused
            # refill at half the window: one wake-up per batch, not per acknowledgement
            if buffer.queued and buffer.in_flight_count <= self.max_in_flight // 2:
                wake = self._wake
                if wake is not None:
                    wake.set()
            return
        future = self._direct.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def _send(self, client: aiomqtt.Client) -> None:
        """The one sender: drain the buffer into the client, at most ``max_in_flight`` ahead.

        QoS 0 runs are encoded here and handed to paho as one packet per
        batch (one write and one completion callback per ~64 KB instead of
        per message: paho's per-message path costs more than the rest of the
        pipeline together). QoS 1 and 2 go through ``paho.publish``, which
        keeps their packet ids and acknowledgements.
        """
        assert self._wake is not None
        wake = self._wake
        paho = client._client
        buffer = self._buffer
        queued = buffer.queued
        mqtt5 = self.protocol == aiomqtt.ProtocolVersion.V5
        fast = self._fast_wire
        fast_qos1 = fast and self.protocol == aiomqtt.ProtocolVersion.V311
        acked_window = min(self.max_in_flight, _ACKED_WINDOW)
        confirmations = self._confirmations
        every = confirmations.every
        confirm_topic = confirmation_topic(self._marker_topic)

        def ask() -> bool:  # a confirmation request: False when the connection is going
            info = paho.publish(confirm_topic, b"", 1, False)
            if info.rc != _SUCCESS:
                return False
            buffer.request(info.mid)
            confirmations.asked()
            return True

        def backlog() -> int:  # messages paho holds: its per-PUBACK work grows with them
            return len(paho._out_messages) if fast else buffer.in_flight_count

        while True:
            await wake.wait()
            wake.clear()
            window = 1 if buffer.probing else self.max_in_flight
            handed = 0
            while queued and buffer.in_flight_count < window and handed < _BATCH:
                if not paho.is_connected():
                    return  # the connection is going; the supervisor takes over
                qos = queued[0].qos
                if (qos == 0 and fast) or (qos == 1 and fast_qos1):
                    handed += self._send_batch(paho, window, mqtt5, qos)
                    if buffer.unrequested >= every and not ask():
                        return
                    continue
                if backlog() >= acked_window:
                    break  # paho's work per PUBACK grows with this; on_publish wakes us
                message = queued.popleft()
                try:
                    info = paho.publish(message.topic, message.raw, message.qos, message.retain)
                except ValueError as exc:  # e.g. larger than MQTT allows
                    self._drop_unsendable(message.topic, exc)
                    continue
                if info.rc != _SUCCESS:
                    queued.appendleft(message)
                    return
                buffer.sent(info.mid, [message])
                handed += 1
                if buffer.unrequested >= every and not ask():
                    return
            if buffer.unrequested and confirmations.due(bool(queued), wake) and not ask():
                return
            if (
                queued
                and buffer.in_flight_count < window
                and ((queued[0].qos == 0 and fast) or backlog() < acked_window)
            ):
                wake.set()
                await asyncio.sleep(0)  # let the event loop write what we handed over

    def _send_batch(self, paho: Any, window: int, mqtt5: bool, qos: int) -> int:
        """Encode the run of messages of one QoS at the head of the queue into one paho packet.

        QoS 0: the whole run is settled when paho has written it (one message
        id for the run). QoS 1 (MQTT 3.1.1 only): each message has its own
        packet id from paho's counter, settled by our PUBACK hook.
        """
        buffer = self._buffer
        queued = buffer.queued
        room = window - buffer.in_flight_count
        count = 0
        qos0: list[Outgoing] = []
        parts: list[bytes] = []
        size = 0
        while queued and queued[0].qos == qos and count < room and size < _BATCH_BYTES:
            message = queued.popleft()
            packet: tuple[bytes, ...]
            try:
                if qos:
                    mid = paho._mid_generate()
                    packet = (
                        encode_publish(message.topic, message.raw, message.retain, mqtt5, qos, mid),
                    )
                else:
                    packet = publish_qos0_parts(message.topic, message.raw, message.retain, mqtt5)
            except ValueError as exc:
                self._drop_unsendable(message.topic, exc)
                continue
            if qos:
                buffer.sent(mid, [message])
                self._fast_acks.add(mid)
            else:
                qos0.append(message)
            parts += packet
            size += len(message.raw)
            count += 1
        if qos0:
            mid = paho._mid_generate()
            paho._packet_queue(_PUBLISH, b"".join(parts), mid, 0, MQTTMessageInfo(mid))
            buffer.sent(mid, qos0)
        elif parts:
            paho._packet_queue(_PUBLISH | 0x02, b"".join(parts), 0, 1, None)
        return max(1, count)

    def _refused(self, topic: str, reason: object, count: int) -> None:
        self._stats.refused += count
        if topic not in self._refused_topics:
            self._refused_topics.add(topic)
            _log.warning("the broker refused a message to %r: %s", topic, reason)

    def _drop_unsendable(self, topic: str, exc: Exception) -> None:
        self._stats.dropped += 1
        self._log.warning("unsendable", "dropped a message to %r: %s", topic, exc)

    # -- receiving ----------------------------------------------------------------------

    async def _read(self, client: aiomqtt.Client) -> None:
        """The subscribe loop: dispatch every message; ends when the connection goes."""
        async for message in client.messages:
            payload: object = message.payload  # bytes from paho, whatever aiomqtt's type says
            raw = bytes(payload) if isinstance(payload, (bytes, bytearray)) else b""
            topic = message.topic.value
            if topic == self._marker_topic:
                marker = self._markers.pop(raw, None)
                if marker is not None and not marker.done():
                    marker.set_result(None)
                action = self._marker_actions.pop(raw, None)
                if action is not None:
                    action()
                continue
            if topic == self._confirm_topic:
                continue  # our own confirmation request, seen through a wide filter ("#")
            # under MQTT 5 the broker sends a copy per matching subscription: each is for its own
            matched = self._matched_filters(message)
            own_status = topic == self._status_topic and self._presence
            if own_status and (matched is None or self._status_topic in matched):
                self._check_own_status(client, raw)
            await self._dispatcher.dispatch(
                topic, raw, message.qos, message.retain, filters=matched
            )
            if self._closing_reader is asyncio.current_task():
                self._closing_reader = None
                return  # a callback disconnected: this connection is closed

    def _check_own_status(self, client: aiomqtt.Client, raw: bytes) -> None:
        """Keep this source shown online while it lives; report another connector using its id.

        What a status message on our own topic means is
        :class:`~cascade.interfaces.PresenceGuard`'s rule. A stale offline (a
        will the broker sent late, when it was slow to notice a dead
        connection) would replace the retained birth, so that a reader
        arriving later sees only "offline": announce online again. Another
        session's online or offline means a second connector uses this
        source id: log it (rate-limited) and announce online again, naming
        the other session, so that the surviving one is shown online.
        Never once disconnect() has begun: its offline must stay the last word.
        """
        if not self._online or not self._started:
            return
        try:
            status = decode_status(raw)
        except InvalidMessageError:
            return
        verdict = self._presence_guard.judge(status)
        if verdict.kind == "stale":
            _log.warning(
                "a stale offline (session %s) replaced this source's status; "
                "announcing online again (session %d)",
                status.session,
                self._session,
            )
        elif verdict.kind == "conflict":
            self._log.error(
                "source-conflict",
                "source id %r is also used by another connector (its session %s %s, ours %d): "
                "their status messages hide each other's; give each engine its own source_id",
                self._source_id,
                status.session,
                status.status,
                self._session,
            )
        if verdict.reannounce:
            online = self._status_payload("online", conflict_session=verdict.conflict_session)
            self._publish_direct(client, self._status_topic, online, 1, True)

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> Subscription:
        """Subscribe ``callback`` to ``topic_filter``; retained messages arrive before this returns.

        When connected, this returns after the broker's SUBACK and after a
        marker message, published on this connection's private topic right
        after the SUBACK, came back: the broker sends a subscription's retained
        messages before it handles the marker, so by then they have been
        dispatched. When not connected, the subscription is made on connection.
        Subscriptions are remade on every reconnection; ``on_sync`` hears
        ``"begin"`` before each SUBSCRIBE and ``"end"`` when its marker is back.
        """
        subscription = self._dispatcher.add(topic_filter, callback, on_sync)
        client = self._client
        if not self._online or client is None:
            return subscription
        try:
            await self._subscribe_at_broker(client, subscription)
        except asyncio.CancelledError:
            await subscription.unsubscribe()  # the caller never gets the handle to do it
            raise
        return subscription

    async def _subscribe(self, client: aiomqtt.Client, filters: list[str]) -> None:
        """SUBSCRIBE to ``filters`` at QoS 1 and wait for the SUBACKs; raises MqttError.

        With subscription identifiers, each filter gets its own SUBSCRIBE (an
        identifier belongs to a whole packet), all sent at once; the marker
        topic needs none, as its messages never reach the dispatcher.
        """
        if not self._use_subscription_ids:
            self._check_granted(filters, await client.subscribe([(f, 1) for f in filters]))
            return
        subscribes = []
        for topic_filter in filters:
            properties = None
            if topic_filter != self._marker_topic:
                properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
                properties.SubscriptionIdentifier = self._subscription_id(topic_filter)
            subscribes.append(client.subscribe(topic_filter, 1, properties=properties))
        results = await asyncio.gather(*subscribes, return_exceptions=True)
        for topic_filter, result in zip(filters, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            self._check_granted([topic_filter], result)

    def _check_granted(self, filters: list[str], codes: Sequence[object]) -> None:
        """Warn about filters the SUBACK refused: nothing will arrive on them.

        mosquitto grants every valid filter (its ACLs act on delivery); other
        brokers refuse some (an ACL, a subscription quota), with 0x80 or above.
        """
        for topic_filter, code in zip(filters, codes, strict=False):  # a short SUBACK: no crash
            value = getattr(code, "value", code)
            if isinstance(value, int) and value >= 0x80:
                self._log.warning(
                    f"suback:{topic_filter}",
                    "the broker refused the subscription to %r (%s): nothing will arrive on it",
                    topic_filter,
                    code,
                )

    def _subscription_id(self, topic_filter: str) -> int:
        """The filter's identifier, the same for the connector's life (a new one if it has none)."""
        number = self._subscription_ids.get(topic_filter)
        if number is None:
            number = next(self._next_subscription_id)
            self._subscription_ids[topic_filter] = number
            self._id_filters[number] = topic_filter
        return number

    def _matched_filters(self, message: aiomqtt.Message) -> set[str] | None:
        """The filters a received copy is for, from its subscription identifiers.

        ``None`` (every matching filter) without identifiers: MQTT 3.1.1, whose
        broker sends one copy per message, or a broker that does not have them.
        A filter nobody subscribes to any more has no subscriptions to deliver to.
        """
        numbers = getattr(message.properties, "SubscriptionIdentifier", None)
        if not numbers:
            return None
        if isinstance(numbers, int):
            numbers = [numbers]
        return {self._id_filters[n] for n in numbers if n in self._id_filters}

    async def _subscribe_at_broker(
        self, client: aiomqtt.Client, subscription: Subscription
    ) -> None:
        """SUBSCRIBE, then wait for the marker behind the filter's retained messages."""
        topic_filter = subscription.topic_filter
        subscription.sync("begin")
        try:
            await self._subscribe(client, [topic_filter])
        except MqttError as exc:
            _log.warning(
                "subscribe to %r failed (%s); retried on reconnection",
                topic_filter,
                describe_failure(exc, self.connect_timeout),
            )
            return
        token, marker = self._send_marker(client, lambda: subscription.sync("end"))
        if asyncio.current_task() is self._reader_task:
            return  # called from a callback: the reader cannot wait for itself
        try:
            async with bounded(self.connect_timeout):
                await marker
        except asyncio.TimeoutError:
            _log.warning(
                "retained messages for %r not confirmed within %.1f s (connect_timeout)",
                topic_filter,
                self.connect_timeout,
            )
        finally:
            self._markers.pop(token, None)

    def _send_marker(
        self, client: aiomqtt.Client, on_arrival: Callable[[], None]
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
        self._publish_direct(client, self._marker_topic, token, 1, False)
        return token, marker

    async def _unsubscribe_at_broker(self, topic_filter: str) -> None:
        """Queue an UNSUBSCRIBE without waiting for the broker's UNSUBACK.

        Delivery has already stopped locally. Waiting would put the broker's
        backlog (every telemetry message queued before it) on the caller's
        path: an engine unsubscribes at the end of each run. Queued now, the
        packet still goes out before any later SUBSCRIBE of the same filter.
        A lost connection needs nothing: filters are remade from the dispatcher.
        The connector's own filters stay: it still needs them.
        """
        if topic_filter in self._own_filters():
            return
        client = self._client
        if self._online and client is not None:
            client._client.unsubscribe(topic_filter)

    def __repr__(self) -> str:
        state = "connected" if self._online else "started" if self._started else "stopped"
        return f"<MqttConnector {self.hostname}:{self.port} {self._source_id} {state}>"
