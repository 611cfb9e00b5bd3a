"""The link over aiomqtt and paho against a real broker: what it does inside those clients."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from typing import ClassVar

import aiomqtt
import pytest

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._paho import PahoLink, _connect
from cascade.connectors.mqtt.testing import LinkHooks, LinkSettings
from cascade.testkit import BrokerEndpoint, Inbox, MosquittoBroker


class RecordingLink(PahoLink):
    """The link over aiomqtt, remembering every one made (the newest last)."""

    made: ClassVar[list[PahoLink]] = []

    def __init__(self, settings: LinkSettings, hooks: LinkHooks) -> None:
        super().__init__(settings, hooks)
        RecordingLink.made.append(self)


async def test_disconnect_from_a_hung_broker_releases_the_connection(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """Socket buffers full, the DISCONNECT cannot be written: disconnect() still closes it all."""
    connector = MqttConnector(
        mosquitto_broker.host,
        mosquitto_broker.port,
        topic_prefix=prefix,
        flush_timeout=0.5,
        link=RecordingLink,
    )
    await connector.connect(require=True)
    client = RecordingLink.made[-1].client
    mosquitto_broker.pause()
    try:
        payload = b"x" * 60_000
        for _ in range(400):  # 24 MB: more than both ends' socket buffers hold
            await connector.publish(f"{prefix}/bulk", payload)
        await asyncio.sleep(0)
        start = time.monotonic()
        await connector.disconnect()
        assert time.monotonic() - start < 0.5 + 2.0
        assert client._client._sock is None  # paho's socket closed
        assert client._misc_task is None or client._misc_task.done()
    finally:
        mosquitto_broker.resume()


async def test_disconnect_during_a_slow_first_attempt_leaves_no_connection(
    mosquitto_broker: MosquittoBroker, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paho connects in a thread no cancel stops: disconnect() does not wait for it, and the
    connection the thread opens afterwards is closed, not left with its will at the broker."""
    started, release = threading.Event(), threading.Event()
    clients: list[aiomqtt.Client] = []
    original = aiomqtt.Client._client_connect

    def slow_connect(client: aiomqtt.Client) -> None:  # slow DNS or TCP, as it were
        clients.append(client)
        started.set()
        release.wait(10)
        original(client)

    closed = asyncio.Event()
    close = _connect.close

    def closing(client: aiomqtt.Client) -> None:
        close(client)
        closed.set()

    monkeypatch.setattr(aiomqtt.Client, "_client_connect", slow_connect)
    monkeypatch.setattr(_connect, "close", closing)
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, connect_timeout=5
    )
    connecting = asyncio.create_task(connector.connect())
    assert await asyncio.to_thread(started.wait, 5)
    async with bounded(2):
        await connector.disconnect()  # while the thread is still connecting
        await connecting
    release.set()
    async with bounded(5):
        await closed.wait()  # the thread, done, had its connection closed
    paho = clients[0]._client
    assert paho._sock is None
    misc = clients[0]._misc_task
    assert misc is None or misc.cancelled() or misc.done()


async def test_public_publish_path_delivers_in_order(
    mqtt_broker: BrokerEndpoint,
    observer: MqttConnector,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback without paho internals delivers everything, in order, at QoS 0 and 1."""
    monkeypatch.setattr(
        "cascade.connectors.mqtt._paho._link.fast_wire_supported", lambda paho: False
    )
    inbox = Inbox()
    await observer.subscribe(f"{prefix}/slow", inbox)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as writer:
        for n in range(500):
            await writer.publish(f"{prefix}/slow", {"n": n}, qos=n % 2)
        await writer.flush(10)
        got = [await inbox.next() for _ in range(500)]
    for qos in (0, 1):
        assert [m.payload["n"] for m in got if m.payload["n"] % 2 == qos] == list(
            range(qos, 500, 2)
        )


async def test_small_packets_are_not_held_back(mqtt_broker: BrokerEndpoint, prefix: str) -> None:
    """TCP_NODELAY is set: Nagle's algorithm held a SUBSCRIBE or marker ~40 ms behind an ACK."""
    host, port = mqtt_broker.host, mqtt_broker.port
    async with MqttConnector(host, port, topic_prefix=prefix, link=RecordingLink):
        sock = RecordingLink.made[-1].client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
@pytest.mark.skipif(
    os.environ.get("CASCADE_MQTT_FAST_PATH", "on").lower() in ("0", "off", "false", "no"),
    reason="the quick ACKs are the bulk reader's, part of the fast path (CASCADE_MQTT_FAST_PATH="
    "off reads through paho, as aiomqtt does, and waits on delayed ACKs as it does)",
)
async def test_answers_written_back_to_back_are_not_held_for_a_delayed_ack(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """Quick ACKs after each read: mosquitto (Nagle on) held the offline's PUBACK behind the
    flush's answer until the client's delayed ACK, ~40 ms of every disconnect()."""
    took = []
    for _ in range(5):  # the fastest of five: a loaded machine slows some, never all
        connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix)
        await connector.connect()
        await connector.publish(f"{prefix}/quick", b"x")  # the flush has something to confirm
        start = time.perf_counter()
        await connector.disconnect()
        took.append(time.perf_counter() - start)
    assert min(took) < 0.03, [f"{seconds * 1000:.0f} ms" for seconds in took]


class CancelOnConnack(PahoLink):
    """The link over aiomqtt that cancels ``target`` right after the CONNACK is handled."""

    target: ClassVar[asyncio.Task[None] | None] = None

    def __init__(self, settings: LinkSettings, hooks: LinkHooks) -> None:
        super().__init__(settings, hooks)
        paho = self.client._client
        answered = paho.on_connect

        def on_connect(*args: object) -> None:
            answered(*args)  # what the link waits on is resolved: open() would return
            assert CancelOnConnack.target is not None
            CancelOnConnack.target.cancel()  # and the cancel comes before it resumes

        paho.on_connect = on_connect


async def test_a_cancel_that_comes_with_the_connack_cancels_connect(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """A caller cancelled as the CONNACK arrives is cancelled, and nothing stays connected.

    aiomqtt awaits the CONNACK through asyncio.wait_for, which before Python 3.12 returns the
    result and drops a cancellation that comes after the answer and before it resumes.
    """
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, link=CancelOnConnack
    )
    connecting = CancelOnConnack.target = asyncio.create_task(connector.connect(require=True))
    try:
        with pytest.raises(asyncio.CancelledError):
            await connecting
        assert not connector.is_connected
    finally:
        CancelOnConnack.target = None
        await connector.disconnect()


async def test_a_cancel_that_comes_with_the_suback_cancels_subscribe(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """A caller cancelled as the SUBACK arrives is cancelled (a Ctrl-C in `cascade watch`).

    aiomqtt awaits the SUBACK through asyncio.wait_for, which before Python 3.12 returned the
    result and dropped the cancellation: `watch` went on subscribing and never ended.
    """
    host, port = mqtt_broker.host, mqtt_broker.port
    async with MqttConnector(
        host, port, topic_prefix=prefix, presence=False, link=RecordingLink
    ) as connector:
        paho = RecordingLink.made[-1].client._client
        answered = paho.on_subscribe

        def on_subscribe(*args: object) -> None:
            answered(*args)  # what subscribe() waits on is resolved
            subscribing.cancel()  # and the cancel comes before it resumes

        paho.on_subscribe = on_subscribe
        subscribing = asyncio.create_task(connector.subscribe(f"{prefix}/x", Inbox()))
        with pytest.raises(asyncio.CancelledError):
            await subscribing
