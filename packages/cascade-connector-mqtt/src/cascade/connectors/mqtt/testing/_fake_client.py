"""A fake aiomqtt client with a tiny broker inside, for the connector's unit tests (private)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttError
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cascade.interfaces import topic_matches

from .._paho import FAST_PATH_VARIABLE, PahoLink

fast_path_only = pytest.mark.skipif(
    os.environ.get(FAST_PATH_VARIABLE, "on").lower() in ("0", "off", "false", "no"),
    reason=f"tests the sender's own PUBLISH packets, which {FAST_PATH_VARIABLE}=off turns off",
)


@dataclass
class Info:
    """What paho's publish returns."""

    rc: int
    mid: int


class FakePaho:
    """The parts of paho's client the connector touches; records everything it is handed."""

    def __init__(self, owner: FakeClient) -> None:
        self.owner = owner
        self.published: list[tuple[str, bytes, int, bool]] = []
        # what was handed over, in order: one list per publish() or per queued run of packets
        self.handed: list[list[tuple[str, bytes, int, bool]]] = []
        self.requested: set[int] = set()  # message ids of the confirmation requests
        self.packets: list[tuple[int, bytes]] = []
        self.on_publish: Any = None
        self.on_unsubscribe: Any = None
        self.on_socket_open: Any = None
        self.on_subscribe: Any = None
        self.on_message: Any = None
        self.connect_timeout = 0.0
        self._out_messages: dict[int, object] = {}
        self._last_mid = 0
        self.connected = True
        self.disconnect_calls = 0
        self.auto_ack = True
        self._ssl_context: object = None
        self._in_packet: dict[str, Any] = {}
        self.acked_by_paho: list[int] = []

    def disable_logger(self) -> None:
        pass

    def is_connected(self) -> bool:
        return self.connected

    def unsubscribe(self, topic: str) -> tuple[int, int]:
        self.owner.unsubscribed.append(topic)
        self.owner.filters.remove(topic)
        return 0, self._mid_generate()

    def _mid_generate(self) -> int:
        self._last_mid += 1
        return self._last_mid

    @property
    def last_mid(self) -> int:
        """The newest message id handed out."""
        return self._last_mid

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Info:
        if not self.connected:
            return Info(4, 0)
        mid = self._mid_generate()
        if payload in FakeClient.poison:
            asyncio.get_running_loop().call_soon(self.owner.lose, None)  # the broker hangs up
            return Info(0, mid)
        self.published.append((topic, payload, qos, retain))
        self.handed.append([(topic, payload, qos, retain)])
        if topic.endswith("/confirm"):
            self.requested.add(mid)
        self.owner.route(topic, payload, qos, retain)
        if self.auto_ack:
            asyncio.get_running_loop().call_soon(self._answer, self.ack, mid)
        return Info(0, mid)

    def _packet_queue(self, command: int, packet: bytes, mid: int, qos: int, info: object) -> int:
        if FakeClient.poison and any(p in FakeClient.poison for _, p, _ in parse_publishes(packet)):
            asyncio.get_running_loop().call_soon(self.owner.lose, None)  # the broker hangs up
            return 0
        self.packets.append((mid, packet))
        self.handed.append([(t, p, qos, r) for t, p, r in parse_publishes(packet)])
        if self.auto_ack:
            loop = asyncio.get_running_loop()
            if qos == 0:
                loop.call_soon(self._answer, self.ack, mid)
            else:
                for packet_id in packet_ids(packet):
                    loop.call_soon(self._answer, self.puback, packet_id)
        return 0

    def _answer(self, answer: Any, mid: int) -> None:
        """An automatic answer: none comes on a connection lost meanwhile."""
        if self.connected:
            answer(mid)

    def puback(self, packet_id: int) -> None:
        """A PUBACK arrives from the broker."""
        self._in_packet = {"packet": packet_id.to_bytes(2, "big")}
        self._handle_pubackcomp("PUBACK")

    def _handle_pubackcomp(self, cmd: str) -> int:
        self.acked_by_paho.append(int.from_bytes(self._in_packet["packet"][:2], "big"))
        return 0

    def ack(self, mid: int) -> None:
        """Tell the connector that ``mid`` was written / acknowledged."""
        self.on_publish(self, None, mid, None, None)

    def ack_all(self) -> None:
        for mid in range(1, self._last_mid + 1):
            self.ack(mid)

    def disconnect(self) -> int:
        self.disconnect_calls += 1
        self.connected = False
        if not self.owner._disconnected.done():
            self.owner._disconnected.set_result(None)
        return 0

    def _reset_sockets(self) -> None:
        self.connected = False


class FakeClient:
    """Stands in for ``aiomqtt.Client``: connects at once (or fails as told), echoes publishes."""

    instances: ClassVar[list[FakeClient]] = []
    fail_with: ClassVar[list[BaseException]] = []
    refuse: ClassVar[set[str]] = set()  # filters whose SUBACK says 0x80 (refused)
    poison: ClassVar[set[bytes]] = set()  # payloads on which the broker drops the connection
    # False: retained messages go only to subscriptions of their exact topic (RabbitMQ 3.x)
    retained_to_wildcards: ClassVar[bool] = True

    def __init__(self, hostname: str, port: int = 1883, **kwargs: Any) -> None:
        self.hostname = hostname
        self.port = port
        self.kwargs = kwargs
        self._client = self.paho = FakePaho(self)
        loop = asyncio.get_running_loop()
        self._connected: asyncio.Future[None] = loop.create_future()
        self._disconnected: asyncio.Future[None] = loop.create_future()
        self._misc_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.filters: list[str] = []
        self.subscription_ids: dict[str, int | None] = {}
        self.unsubscribed: list[str] = []
        self.retained: dict[str, bytes] = {}  # what this client's tiny broker retains
        FakeClient.instances.append(self)

    async def __aenter__(self) -> FakeClient:
        if FakeClient.fail_with:
            raise FakeClient.fail_with.pop(0)
        await self._lock.acquire()
        self._connected.set_result(None)
        return self

    async def subscribe(
        self,
        topic: str | list[tuple[str, int]],
        qos: int = 0,
        options: object = None,
        properties: Properties | None = None,
    ) -> list[int]:
        filters = [topic] if isinstance(topic, str) else [f for f, _ in topic]
        self.filters.extend(filters)
        for topic_filter in filters:
            self.subscription_ids[topic_filter] = getattr(
                properties, "SubscriptionIdentifier", [None]
            )[0]
            exact_only = not FakeClient.retained_to_wildcards
            for stored, payload in self.retained.items():
                if stored == topic_filter or (
                    topic_matches(topic_filter, stored) and not exact_only
                ):
                    self.deliver(stored, payload, 1, retain=True)
        return [0x80 if f in FakeClient.refuse else 1 for f in filters]

    def route(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Deliver a message published to the broker: under MQTT 5, one copy per match.

        mosquitto does so for an MQTT 5 client, each copy with the
        subscription identifier of its filter (the spec allows it).
        """
        if retain and payload:
            self.retained[topic] = payload
        elif retain:
            self.retained.pop(topic, None)
        matching = [f for f in dict.fromkeys(self.filters) if topic_matches(f, topic)]
        if not matching:
            return
        if self.kwargs.get("protocol") != aiomqtt.ProtocolVersion.V5:
            self.deliver(topic, payload, qos)
            return
        for topic_filter in matching:
            number = self.subscription_ids.get(topic_filter)
            self.deliver(topic, payload, qos, subscription_ids=[number] if number else None)

    def deliver(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        subscription_ids: list[int] | None = None,
    ) -> None:
        """A message from the broker, with these MQTT 5 subscription identifiers if given.

        Handed to paho's ``on_message``, as paho's reader would.
        """
        properties = None
        if subscription_ids:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = subscription_ids
        message = MQTTMessage(1, topic.encode())
        message.payload = payload
        message.qos = qos
        message.retain = retain
        message.properties = properties
        if self.paho.on_message is not None:
            self.paho.on_message(self.paho, None, message)

    def lose(self, exc: BaseException | None) -> None:
        """The connection goes."""
        self._client.connected = False
        if not self._disconnected.done():
            self._disconnected.set_exception(exc or MqttError("lost"))


class FakeClientLink(PahoLink):
    """The link over aiomqtt, on :class:`FakeClient`: ``MqttConnector(link=FakeClientLink)``."""

    client_class = FakeClient


@dataclass
class FakeMqtt:
    """What the ``fake_mqtt`` fixture gives a test."""

    clients: list[FakeClient] = field(default_factory=list)
    link: type[FakeClientLink] = FakeClientLink

    @property
    def paho(self) -> FakePaho:
        """The newest client's fake paho client."""
        return self.client.paho

    @property
    def marker_topic(self) -> str:
        """The newest connection's marker topic (the filter under ``/_marker/``)."""
        return next(f for f in self.client.filters if "/_marker/" in f)

    @property
    def client(self) -> FakeClient:
        """The newest client the connector made."""
        return self.clients[-1]

    def fail_next(self, *errors: BaseException) -> None:
        """Make the next connection attempts raise these."""
        FakeClient.fail_with.extend(errors)


CONNECTOR_TASKS = frozenset({"cascade-mqtt", "cascade-mqtt-reader", "cascade-mqtt-sender"})


def connector_tasks() -> set[asyncio.Task[Any]]:
    """The connector tasks still running in this event loop (none once it is disconnected)."""
    return {t for t in asyncio.all_tasks() if t.get_name() in CONNECTOR_TASKS and not t.done()}


def _split(blob: bytes) -> list[tuple[int, bytes]]:
    """Split concatenated MQTT packets into (first byte, body)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(blob):
        header = blob[pos]
        pos += 1
        length = 0
        multiplier = 1
        while True:
            byte = blob[pos]
            pos += 1
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        out.append((header, blob[pos : pos + length]))
        pos += length
    return out


def parse_publishes(blob: bytes) -> list[tuple[str, bytes, bool]]:
    """Split concatenated MQTT 3.1.1 PUBLISH packets into (topic, payload, retain)."""
    out: list[tuple[str, bytes, bool]] = []
    for header, body in _split(blob):
        assert header & 0xF0 == 0x30, f"not a PUBLISH: {header:#x}"
        topic_length = int.from_bytes(body[:2], "big")
        topic = body[2 : 2 + topic_length].decode()
        start = 2 + topic_length + (2 if header & 0x06 else 0)
        out.append((topic, body[start:], bool(header & 1)))
    return out


def packet_ids(blob: bytes) -> list[int]:
    """The packet ids of the QoS 1/2 PUBLISH packets in ``blob``."""
    ids = []
    for header, body in _split(blob):
        if header & 0x06:
            topic_length = int.from_bytes(body[:2], "big")
            ids.append(int.from_bytes(body[2 + topic_length : 4 + topic_length], "big"))
    return ids
