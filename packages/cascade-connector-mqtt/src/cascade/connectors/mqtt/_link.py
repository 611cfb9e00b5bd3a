"""The seam between the connector and one live MQTT connection.

The connector's parts (supervisor, presence, sender, subscriptions) talk to
the broker only through a :class:`Link`: open with a will, publish one
message, queue runs of PUBLISH packets the sender encoded itself, subscribe
and unsubscribe, read incoming messages, close. A link reports what it
settles through the :class:`LinkHooks` it was made with, never by calling
back into the connector. ``_paho/`` implements it over aiomqtt and paho;
unit tests hand the connector another through ``MqttConnector(link=...)``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cascade.interfaces import CascadeError, ConnectError

__all__ = [
    "ConnectRefusedError",
    "Incoming",
    "Link",
    "LinkError",
    "LinkFactory",
    "LinkHooks",
    "LinkSettings",
]


class ConnectRefusedError(ConnectError):
    """The broker answered the CONNECT with a refusal (credentials, authorisation, ...)."""


class LinkError(CascadeError):
    """The connection failed or went away; ``str()`` says why, in words."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message from the broker, with the MQTT 5 subscription identifiers it came for."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class LinkSettings:
    """What one connection is opened with."""

    hostname: str
    port: int
    client_id: str | None
    mqtt5: bool
    keepalive: int
    connect_timeout: float
    acked_window: int  # QoS 1+ messages the client keeps in flight itself
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_context: ssl.SSLContext | None = None
    will: tuple[str, bytes] | None = None  # topic and payload of a retained QoS 1 will
    receive_buffer: int = 32 * 1024 * 1024  # live telemetry and log bytes held for slow callbacks
    client_options: Mapping[str, Any] = field(default_factory=dict)
    session_expiry: int | None = None  # a persistent session (seconds), else a clean one

    @property
    def persistent(self) -> bool:
        """Whether the broker keeps this client's session (and queues for it while away):
        ``session_expiry``, or aiomqtt's ``clean_session=False`` / ``clean_start=False``."""
        options = self.client_options
        return (
            self.session_expiry is not None
            or options.get("clean_session") is False
            or options.get("clean_start") is False
        )


@dataclass(frozen=True)
class LinkHooks:
    """How a link reports back.

    ``settled(mid, refusal)``: the message (or run) ``mid`` was written (QoS 0)
    or acknowledged (QoS 1+); ``refusal`` is the reason of a PUBACK that
    refused it (MQTT 5), else ``None``. ``unreadable(topic, reason)``: a
    message from the broker could not be taken in (a topic name MQTT does not
    allow): it is dropped, and the connection goes on. ``shed(count)``: ``count``
    received live QoS 0 telemetry and log messages were discarded, oldest first, because
    more than ``LinkSettings.receive_buffer`` bytes of them waited for :meth:`Link.messages`'
    reader.
    """

    settled: Callable[[int, object], None]
    unreadable: Callable[[str, str], None]
    shed: Callable[[int], None] = lambda count: None


class Link(Protocol):
    """One MQTT connection, from CONNECT to close."""

    @property
    def subscription_ids(self) -> bool:
        """Whether SUBSCRIBEs may carry MQTT 5 subscription identifiers on this connection."""

    @property
    def batches(self) -> bool:
        """Whether :meth:`queue_qos0` is available, and :meth:`queue_qos1` under MQTT 3.1.1."""

    async def open(self) -> None:
        """CONNECT and wait for the CONNACK; raises ``ConnectError`` (``ConnectRefusedError``).

        After a failure or a cancellation the caller still calls :meth:`close`.
        """

    def connected(self) -> bool:
        """Whether the connection is up right now."""

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand one message to the client; its message id, or ``None`` if the connection is going.

        Raises ``ValueError`` for a message MQTT cannot carry.
        """

    def queue_qos0(self, packets: bytes) -> int:
        """Write encoded QoS 0 PUBLISH packets; one message id, settled once all are written."""

    def packet_id(self) -> int:
        """A fresh packet id for a QoS 1 PUBLISH the sender encodes itself."""

    def queue_qos1(self, packets: bytes, packet_ids: Sequence[int]) -> None:
        """Write encoded QoS 1 PUBLISH packets; each id is settled by its PUBACK."""

    def backlog(self) -> int:
        """QoS 1+ messages the client still waits on (its work per PUBACK grows with them)."""

    async def subscribe(self, filters: Sequence[tuple[str, int | None]], qos: int) -> list[object]:
        """SUBSCRIBE at ``qos`` to (filter, subscription id) pairs; one reason code per filter.

        Raises :class:`LinkError` when the broker does not answer or the connection goes.
        """

    def unsubscribe(self, topic_filter: str) -> None:
        """Queue an UNSUBSCRIBE without waiting for the broker's UNSUBACK."""

    def messages(self) -> AsyncIterator[Incoming]:
        """The incoming messages; raises :class:`LinkError` when the connection goes.

        While the reader is behind, at most ``receive_buffer`` bytes of live QoS 0 telemetry
        and log payloads wait: beyond that the oldest of them are shed (``LinkHooks.shed``);
        QoS 1, retained and other messages never are, and do not count towards the bound.
        """

    async def close(self, *, graceful: bool) -> None:
        """Release everything: DISCONNECT first if ``graceful`` and still possible. Never hangs."""


class LinkFactory(Protocol):
    """Makes the link of each connection attempt: ``MqttConnector(link=...)`` (a class will do)."""

    def __call__(self, settings: LinkSettings, hooks: LinkHooks) -> Link: ...

    def check(self) -> None:
        """Raise ``RuntimeError`` saying why links cannot work here; ``connect()`` calls it."""
