"""``MqttConnector``: Cascade's :class:`~cascade.interfaces.Connector` over aiomqtt 2.x.

A thin facade that only forwards: the options (``_options``), connect and
disconnect (``_lifecycle``), the supervisor of connections (``_supervisor``),
each connection (``_connection``), presence (``_presence``), the sender
(``_sender``) and the subscriptions (``_subscriptions``) do the work, over a
link (``_link``) that ``_paho`` implements.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from typing_extensions import Self

from cascade.connector_kit import BrokerDifferences, RateLimitedLogger, Subscription
from cascade.interfaces import (
    DEFAULT_PREFIX,
    BrokerCapabilities,
    MessageCallback,
    Payload,
    SyncCallback,
    encode_level,
    encode_payload,
    validate_topic,
)

from ._hosts import node_name
from ._lifecycle import Lifecycle
from ._link import LinkFactory
from ._options import ConnectorOptions
from ._presence import Presence
from ._sender import Sender
from ._stats import MqttConnectorStats
from ._subscriptions import Subscriptions
from ._supervisor import Supervisor

__all__ = ["MqttConnector"]

_log = logging.getLogger("cascade.connectors.mqtt")


def _default_link() -> LinkFactory:
    try:
        from ._paho import PahoLink
    except ImportError as exc:  # pragma: no cover - aiomqtt is a dependency
        raise ImportError(
            "MqttConnector needs aiomqtt: pip install cascade-connector-mqtt "
            "(or cascade-runtime[mqtt])"
        ) from exc
    return PahoLink


class MqttConnector(BrokerDifferences):
    """A :class:`~cascade.interfaces.Connector` over MQTT, safe inside a workflow engine.

    ``MqttConnector(hostname, port=1883, **options)``, or, for a broker of
    several nodes, ``MqttConnector(hosts=["a:1883", "b:1883"], **options)``:
    the connector tries the nodes in order (an entry without a port gets
    ``port``) and, when its node goes, the next ones at once, from the one
    after it; the backoff delay comes between rounds in which every node
    failed. Each move is logged at INFO (``moved to broker node b:1883 (from
    a:1883)``) and :attr:`hostname` and :attr:`port` say which node it is on.
    Subscriptions are made again on the new node (its retained messages
    delivered), and what was not confirmed is sent again there. A bad entry
    raises ``ValueError`` naming it. Options:

    - ``username``, ``password``: credentials.
    - ``tls``: ``True`` for TLS with the system's CAs (or ``tls_ca_file``), or an
      :class:`ssl.SSLContext`; ``tls_ca_file``: a CA bundle to trust (implies TLS).
    - ``keepalive`` (seconds, 60), ``protocol`` (``"3.1.1"`` or ``"5"``).
    - ``client_id``: the MQTT client id (random by default).
    - ``session_expiry`` (seconds, needs ``client_id``): a persistent session.
      The broker keeps this client's subscriptions while it is away and
      queues the QoS 1 messages that match them, which arrive on its next
      connection, also one of a new process with the same ``client_id``
      (subscribe before ``connect()`` so that callbacks are there for them).
      MQTT 5: Clean Start off and this Session Expiry Interval; MQTT 3.1.1:
      Clean Session off (the broker says how long it keeps the session;
      mosquitto: ``persistent_client_expiration``, by default for ever).
    - ``topic_prefix`` (``cascade``), ``source_id`` (``<hostname>-<pid>``; topic levels
      encode it, ``encode_level``): valid UTF-8 and at most ``MAX_ID_BYTES`` (1,024)
      bytes each, or ``ValueError``.
    - ``sourced_topics``: publish an engine's run telemetry and log lines on the sourced
      layout, ``.../{run_id}/{kind}/{source}`` and ``.../{run_id}/{source}``, whose last
      level a broker ACL binds to the engine's login (docs/protocol.md, "The sourced
      layout"): give each engine a login of its own and make ``source_id`` that login.
      Default ``$CASCADE_SOURCED_TOPICS`` (``1``/``0``; any other value: ``ValueError``),
      else off: the existing Cascade tools read only the plain layout, Cascade's readers
      both. What only reads or steers (the CLI) publishes no telemetry: it is moot there.
    - ``presence`` (``True``): announce this source under ``{prefix}/status/``
      (birth, will, graceful offline). Clients that only watch or control,
      such as the CLI, turn it off so they leave no status behind.
    - ``buffer_size``: messages kept while the broker is slow or away (10,000;
      a full buffer drops the oldest). ``max_in_flight``: messages handed to
      the MQTT client and not yet confirmed (1,000).
    - ``receive_buffer``: bytes of received live QoS 0 telemetry and log payloads held
      while the subscription callbacks are behind the broker (32 MiB); past it the oldest
      of them are discarded and counted in ``stats.shed``, so a slow reader sheds load
      instead of making the broker drop for it or falling behind without limit.
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
    - ``standby`` (``False``; needs several nodes): keep a second connection open to
      the node after the one served (no will, no subscriptions, a clean session, client
      id ``<client_id>-standby`` if one is given). When the served node goes, QoS 0
      messages (an engine's task telemetry) go through it at once, in publish order,
      until a connection is served again; a QoS 1 message (a run's start or end) and
      everything after it wait for that connection. For clusters whose surviving nodes
      accept no new connection while they elect (NATS JetStream: 5 to 10 s), it keeps
      the telemetry flowing; the cost is one more connection per connector.
      ``stats.bridged`` counts what went through it.
    - ``link``: what makes each connection (see ``_link.py``); the default is
      the link over aiomqtt. Tests hand a fake one here.
    - Anything else is passed to :class:`aiomqtt.Client`.

    ``connect()`` never raises for network faults: it waits up to the connect
    timeout for the broker and keeps trying in the background. With
    ``require=True`` (for a CLI) it raises :class:`~cascade.interfaces.ConnectError`
    with the cause instead, and the connector stays disconnected; with several
    nodes it tries each in turn (rounds apart by the backoff) for up to
    ``connect_timeout`` before raising, naming each node's failure.
    """

    def __init__(
        self,
        hostname: str | None = None,
        port: int = 1883,
        *,
        hosts: Sequence[str] | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool | ssl.SSLContext = False,
        tls_ca_file: str | None = None,
        keepalive: int = 60,
        protocol: object = "3.1.1",
        client_id: str | None = None,
        session_expiry: float | None = None,
        topic_prefix: str = DEFAULT_PREFIX,
        source_id: str | None = None,
        sourced_topics: bool | None = None,
        presence: bool = True,
        buffer_size: int = 10_000,
        max_in_flight: int = 1_000,
        receive_buffer: int = 32 * 1024 * 1024,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        connect_timeout: float = 5.0,
        flush_timeout: float = 5.0,
        standby: bool = False,
        link: LinkFactory | None = None,
        **client_options: Any,
    ) -> None:
        make_link = link if link is not None else _default_link()
        options = self._options = ConnectorOptions(
            hostname=hostname,
            port=port,
            hosts=hosts if hosts is None or isinstance(hosts, str) else tuple(hosts),
            username=username,
            password=password,
            tls=tls,
            tls_ca_file=tls_ca_file,
            keepalive=keepalive,
            protocol=protocol,
            client_id=client_id,
            session_expiry=session_expiry,
            topic_prefix=topic_prefix,
            source_id=source_id,
            presence=presence,
            buffer_size=buffer_size,
            max_in_flight=max_in_flight,
            receive_buffer=receive_buffer,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            connect_timeout=connect_timeout,
            flush_timeout=flush_timeout,
            client_options=client_options,
            standby=standby,
            sourced_topics=sourced_topics,
        )
        self._stats = MqttConnectorStats()
        self._log = RateLimitedLogger(_log)
        self._presence = Presence(options.source, options.prefix, presence, self._log)
        self._sender = Sender(buffer_size, max_in_flight, self._stats, self._log)
        marker_base = f"{options.prefix}/_marker/{encode_level(options.source)}"
        self._subscriptions = Subscriptions(
            self._stats,
            marker_base,
            connect_timeout,
            self._log,
            online=lambda: self._supervisor.online_connection(),  # the supervisor keeps it
            backoff_initial=options.backoff_initial,
            backoff_max=options.backoff_max,
        )
        self._supervisor = Supervisor(
            options,
            make_link,
            self._presence,
            self._sender,
            self._subscriptions,
            self._stats,
            self._log,
        )
        self._lifecycle = Lifecycle(self._supervisor, make_link.check, options.flush_timeout)

    # -- properties -----------------------------------------------------------------------

    @property
    def hostname(self) -> str:
        """The broker's host name or address: of the node connected to (or being tried)."""
        return self._supervisor.node[0]

    @property
    def port(self) -> int:
        """The broker's port: of the node connected to (or being tried)."""
        return self._supervisor.node[1]

    @property
    def hosts(self) -> tuple[str, ...]:
        """The broker's nodes in the order they are tried, as ``host:port``."""
        return tuple(node_name(node) for node in self._options.nodes)

    @property
    def connect_timeout(self) -> float:
        """The longest ``connect()`` waits, and the bound of each connection attempt (seconds)."""
        return self._options.connect_timeout

    @property
    def flush_timeout(self) -> float:
        """How long ``disconnect()`` tries to deliver what is buffered (seconds)."""
        return self._options.flush_timeout

    @property
    def max_in_flight(self) -> int:
        """Messages handed to the MQTT client and not yet confirmed, at most."""
        return self._options.max_in_flight

    @property
    def source_id(self) -> str:
        """This process's id in the protocol (``<hostname>-<pid>`` by default)."""
        return self._options.source

    @property
    def topic_prefix(self) -> str:
        """The first topic level(s) of every Cascade topic."""
        return self._options.prefix

    @property
    def sourced_topics(self) -> bool:
        """Whether an engine on this connector publishes its runs' telemetry and log lines on
        the sourced layout (``sourced_topics=``, else ``$CASCADE_SOURCED_TOPICS``)."""
        return self._options.sourced

    @property
    def is_connected(self) -> bool:
        """Whether the broker connection is up (and presence announced) right now."""
        return self._supervisor.online

    @property
    def stats(self) -> MqttConnectorStats:
        """The connector's counters (``buffered`` is computed when read)."""
        buffer = self._sender.buffer
        self._stats.buffered = len(buffer)
        self._stats.resent = buffer.resent
        return self._stats

    @property
    def capabilities(self) -> BrokerCapabilities:
        """What the broker was found to do: learned on the first connection (see ``subscribe``)."""
        return self._subscriptions.capabilities

    @property
    def session(self) -> int:
        """The presence session number of the current (or last) connection; 0 before any."""
        return self._presence.session

    # -- lifecycle ------------------------------------------------------------------------

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
        await self._lifecycle.connect(require)

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until the connection is up (presence announced, subscriptions remade).

        Returns ``False`` if it is not up within ``timeout`` seconds or the
        connector is not started. For callers that want to know when
        telemetry flows again; publishing never needs it.
        """
        return await self._supervisor.wait_online(timeout)

    async def disconnect(self) -> None:
        """Flush (up to ``flush_timeout``), publish a graceful offline, and close. Idempotent.

        Never hangs: a broker that is hung or gone costs at most the flush
        timeout plus about 1.5 s (offline status, then DISCONNECT). Messages
        still buffered are discarded and counted as dropped. Called from a
        subscription callback, it completes the same way and returns; that
        connection's subscribe loop stops when the callback returns.
        """
        await self._lifecycle.disconnect()

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

    # -- publishing and subscribing -------------------------------------------------------

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
        if not self._supervisor.started:
            self._stats.dropped += 1
            self._log.warning("not-connected", "publish to %r while not connected: dropped", topic)
            return
        self._sender.enqueue(topic, raw, qos, retain)

    def publisher(self, topic: str, qos: int = 0, retain: bool = False) -> Callable[[bytes], None]:
        """A function that publishes encoded payloads to ``topic``, as :meth:`publish` does.

        For a loop that publishes many messages to one topic (the engine's telemetry): the
        topic and ``qos`` are checked once, here, and each call queues its bytes without a
        coroutine of its own. Dropped and counted, as :meth:`publish` does, while not connected.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        validate_topic(topic)
        supervisor, enqueue = self._supervisor, self._sender.enqueue
        stats, log = self._stats, self._log

        def send(raw: bytes) -> None:
            if not supervisor.started:
                stats.dropped += 1
                log.warning("not-connected", "publish to %r while not connected: dropped", topic)
                return
            enqueue(topic, raw, qos, retain)

        return send

    def batch_publisher(
        self, topic: str, qos: int = 0, retain: bool = False
    ) -> Callable[[Sequence[bytes]], None]:
        """A function that publishes a batch of encoded payloads to ``topic``, in order, in one
        call: :meth:`publisher`'s, each payload queued as :meth:`publish` queues it.

        For a loop that gathers one topic's messages per turn (the engine's telemetry): the
        batch joins the buffer in one step (a full buffer drops its oldest and counts them).
        Dropped and counted, as :meth:`publish` does, while not connected.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        validate_topic(topic)
        supervisor, enqueue_many = self._supervisor, self._sender.enqueue_many
        stats, log = self._stats, self._log

        def send_many(raws: Sequence[bytes]) -> None:
            if not supervisor.started:
                stats.dropped += len(raws)
                log.warning("not-connected", "publish to %r while not connected: dropped", topic)
                return
            if raws:
                enqueue_many(topic, raws, qos, retain)

        return send_many

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker accepted everything published so far (PUBACK for QoS 1+).

        Raises :class:`~cascade.interfaces.FlushTimeoutError` after ``timeout``
        seconds (default: the connector's ``flush_timeout``). Messages dropped
        from a full buffer count as settled.
        """
        where = self._supervisor.where
        await self._sender.flush(self.flush_timeout if timeout is None else timeout, where)

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
        return await self._subscriptions.subscribe(topic_filter, callback, on_sync)

    def __repr__(self) -> str:
        state = (
            "connected"
            if self._supervisor.online
            else "started"
            if self._supervisor.started
            else "stopped"
        )
        return f"<MqttConnector {self._supervisor.where} {self.source_id} {state}>"
