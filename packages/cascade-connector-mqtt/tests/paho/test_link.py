"""PahoLink over a mocked aiomqtt client: arguments, failures, PUBACKs, messages, close."""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
from unittest.mock import MagicMock

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError, MqttError
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pytest_mock import MockerFixture

from cascade.connectors.mqtt import ConnectRefusedError, MqttConnector
from cascade.connectors.mqtt._paho import FAST_PATH_VARIABLE, PahoLink, _connect, _reasons
from cascade.connectors.mqtt.testing import Incoming, LinkError, LinkHooks, LinkSettings
from cascade.interfaces import ConnectError


def settings(**changes: object) -> LinkSettings:
    """The settings of one connection to ``broker:1883``, with ``changes``."""
    fields: dict[str, object] = {
        "hostname": "broker",
        "port": 1883,
        "client_id": "me",
        "mqtt5": False,
        "keepalive": 60,
        "connect_timeout": 5.0,
        "acked_window": 100,
        **changes,
    }
    return LinkSettings(**fields)  # type: ignore[arg-type]


@pytest.fixture
def client(mocker: MockerFixture) -> MagicMock:
    """The aiomqtt client each PahoLink makes, mocked (its paho client ``client._client`` too)."""
    client_class = mocker.patch.object(PahoLink, "client_class")
    client: MagicMock = client_class.return_value
    client._client._ssl_context = None
    client._client.on_socket_close = None
    client._client.on_socket_open = None
    client._client.on_publish = None
    client._client.on_connect = None
    client._client.on_subscribe = None
    client._misc_task = None
    return client


@pytest.fixture
def hooks(mocker: MockerFixture) -> LinkHooks:
    """Link hooks that record their calls."""
    return LinkHooks(settled=mocker.Mock(), unreadable=mocker.Mock())


@pytest.fixture(autouse=True)
def fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the session chose, these tests say which paths they take."""
    monkeypatch.delenv(FAST_PATH_VARIABLE, raising=False)


def wrapped(cause: BaseException) -> MqttError:
    """An MqttError as aiomqtt raises it for a socket error: the cause only as context."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise MqttError(str(exc)) from None
    except MqttError as error:
        return error


async def test_settings_become_the_clients_arguments(client: MagicMock, hooks: LinkHooks) -> None:
    """Will, protocol, credentials, TLS and pass-through options reach aiomqtt.Client."""
    context = ssl.create_default_context()
    PahoLink(
        settings(
            mqtt5=True,
            username="u",
            password="p",
            keepalive=7,
            tls_context=context,
            will=("cascade/status/s", b"{}"),
            client_options={"clean_session": True},
        ),
        hooks,
    )
    (call,) = PahoLink.client_class.call_args_list
    assert call.args == ("broker", 1883)
    options = call.kwargs
    assert options["will"] == aiomqtt.Will("cascade/status/s", b"{}", 1, True)
    assert options["protocol"] == aiomqtt.ProtocolVersion.V5
    assert (options["identifier"], options["username"], options["password"]) == ("me", "u", "p")
    assert (options["keepalive"], options["timeout"], options["max_inflight_messages"]) == (
        7,
        math.inf,  # aiomqtt's waits (asyncio.wait_for) may drop a cancel: the link bounds them
        100,
    )
    assert options["tls_context"] is context
    assert options["clean_session"] is True


@pytest.mark.parametrize("mqtt5", [False, True], ids=["mqtt311", "mqtt5"])
async def test_a_session_expiry_asks_for_a_persistent_session(
    client: MagicMock, hooks: LinkHooks, mqtt5: bool
) -> None:
    """MQTT 3.1.1: Clean Session off. MQTT 5: Clean Start off and the Session Expiry Interval,
    beside the CONNECT properties the caller gave."""
    given = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    given.ReceiveMaximum = 10
    PahoLink(
        settings(mqtt5=mqtt5, session_expiry=3600, client_options={"properties": given}), hooks
    )
    options = PahoLink.client_class.call_args.kwargs
    if not mqtt5:
        assert options["clean_session"] is False
        assert "clean_start" not in options
        return
    assert options["clean_start"] is False
    assert "clean_session" not in options
    properties = options["properties"]
    assert (properties.SessionExpiryInterval, properties.ReceiveMaximum) == (3600, 10)


async def test_a_refused_connack_is_a_connect_refused_error(
    client: MagicMock, hooks: LinkHooks
) -> None:
    """A CONNACK refusal becomes ConnectRefusedError saying what was refused."""
    client.__aenter__.side_effect = MqttConnectError(4)
    with pytest.raises(ConnectRefusedError, match="bad user name or password"):
        await PahoLink(settings(), hooks).open()


async def test_a_socket_error_is_a_connect_error_in_words(
    client: MagicMock, hooks: LinkHooks
) -> None:
    """A refused TCP connection is a ConnectError (not a refusal) naming host, port and cause."""
    client.__aenter__.side_effect = wrapped(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(ConnectError) as info:
        await PahoLink(settings(port=1999), hooks).open()
    assert not isinstance(info.value, ConnectRefusedError)
    assert (info.value.host, info.value.port) == ("broker", 1999)
    assert "connection refused" in info.value.reason


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "unknown host"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS failure"),
        (OSError(101, "Network is unreachable"), "unreachable"),
        (TimeoutError(), "no answer"),
    ],
)
def test_failures_are_described_in_words(cause: BaseException, words: str) -> None:
    """Socket and TLS errors hidden behind aiomqtt's MqttError are named."""
    assert words in _reasons.describe_connect_failure(wrapped(cause), 5.0)


async def test_a_suback_not_in_time_is_a_link_error_in_words(
    client: MagicMock, hooks: LinkHooks
) -> None:
    """The link bounds the wait for a SUBACK itself, by connect_timeout (aiomqtt no longer does)."""

    async def unanswered(*args: object, **kwargs: object) -> list[int]:
        await asyncio.Event().wait()
        return []

    client.subscribe.side_effect = unanswered
    client._disconnected = asyncio.get_running_loop().create_future()
    link = PahoLink(settings(connect_timeout=0.01), hooks)
    with pytest.raises(LinkError, match=r"no answer from the broker within 0\.01 s"):
        await link.subscribe([("a/#", None)], 0)


@pytest.mark.parametrize("mqtt5", [False, True])
async def test_a_connection_closed_before_the_suback_ends_the_wait_for_it(
    client: MagicMock, hooks: LinkHooks, mqtt5: bool
) -> None:
    """RabbitMQ closes the connection on a SUBSCRIBE it denies: the link says so as the
    connection goes, where aiomqtt would wait out connect_timeout for an answer that cannot
    come; the call it waited on is cancelled."""
    asked = asyncio.Event()
    cancelled: list[bool] = []

    async def unanswered(*args: object, **kwargs: object) -> list[int]:
        asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return []

    client.subscribe.side_effect = unanswered
    disconnected = client._disconnected = asyncio.get_running_loop().create_future()
    link = PahoLink(settings(mqtt5=mqtt5, connect_timeout=math.inf), hooks)
    subscribing = asyncio.create_task(link.subscribe([("a/#", 1 if mqtt5 else None)], 0))
    await asyncio.wait_for(asked.wait(), 30)
    disconnected.set_exception(MqttError("[code:7] The connection was lost."))
    with pytest.raises(LinkError, match="The connection was lost"):
        await asyncio.wait_for(subscribing, 30)
    assert cancelled == [True]


@pytest.mark.parametrize("mqtt5", [False, True])
@pytest.mark.parametrize("qos", [0, 1])
async def test_subscribe_asks_for_the_qos_it_is_given(
    client: MagicMock, hooks: LinkHooks, mqtt5: bool, qos: int
) -> None:
    """The QoS of every filter is the one asked for, in one SUBSCRIBE (MQTT 3.1.1) or one per
    filter with its subscription identifier (MQTT 5)."""

    async def granted(*args: object, **kwargs: object) -> list[int]:
        return [qos]

    client.subscribe.side_effect = granted
    client._disconnected = asyncio.get_running_loop().create_future()
    link = PahoLink(settings(mqtt5=mqtt5), hooks)
    assert await link.subscribe([("a/#", 7), ("b/+", None)], qos) == [qos] * (2 if mqtt5 else 1)
    if mqtt5:
        calls = [(c.args, c.kwargs["properties"]) for c in client.subscribe.call_args_list]
        assert [args for args, _ in calls] == [("a/#", qos), ("b/+", qos)]
        assert calls[0][1].SubscriptionIdentifier == [7]  # paho keeps it as a list
        assert calls[1][1] is None
    else:
        client.subscribe.assert_called_once_with([("a/#", qos), ("b/+", qos)])


def test_timeouts_are_described_with_their_length() -> None:
    """aiomqtt's 'Operation timed out' and a bare TimeoutError both say how long was waited."""
    for exc in (MqttError("Operation timed out"), TimeoutError()):
        assert _reasons.describe_failure(exc, 2.5) == (
            "no answer from the broker within 2.5 s (connect_timeout)"
        )
    assert _reasons.describe_failure(RuntimeError(), 1) == "RuntimeError (without a message)"
    assert _reasons.describe_failure(MqttError("gone"), 1) == "gone"


@pytest.mark.parametrize("host", ["a" * 300, "\udcff"])
async def test_a_host_the_resolver_cannot_encode_is_a_connect_error(host: str) -> None:
    """A label over 63 characters or bytes that were not UTF-8: a ConnectError saying so, not
    the resolver's UnicodeError (it never reaches the network)."""
    connector = MqttConnector(host, presence=False, connect_timeout=2)
    try:
        with pytest.raises(ConnectError, match="not a host name the resolver can look up"):
            await connector.connect(require=True)
    finally:
        await connector.disconnect()


def test_nagle_is_left_alone_where_the_transport_is_not_tcp() -> None:
    """A Unix socket refuses TCP_NODELAY and a websocket wrapper has no setsockopt: no error."""
    left, right = socket.socketpair()
    with left, right:
        _connect.disable_nagle(left)
    _connect.disable_nagle(object())


async def test_our_own_pubacks_never_reach_paho(client: MagicMock, hooks: LinkHooks) -> None:
    """Under MQTT 3.1.1 the PUBACK of a packet the sender encoded settles it; paho never sees it."""
    paho = client._client
    paho_handler = paho._handle_pubackcomp
    link = PahoLink(settings(), hooks)
    assert link.batches
    link.queue_qos1(b"packets", [7])
    paho._in_packet = {"packet": (7).to_bytes(2, "big")}
    paho._handle_pubackcomp("PUBACK")
    hooks.settled.assert_called_once_with(7, None)  # type: ignore[attr-defined]
    paho_handler.assert_not_called()
    paho._in_packet = {"packet": (8).to_bytes(2, "big")}  # one of paho's own
    paho._handle_pubackcomp("PUBACK")
    paho_handler.assert_called_once_with("PUBACK")


@pytest.mark.parametrize("how", ["paho lacks its internals", "turned off"])
async def test_without_the_fast_path_there_are_no_batches(
    client: MagicMock, hooks: LinkHooks, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A paho without what the fast path needs, or CASCADE_MQTT_FAST_PATH=off: publish() only."""
    if how == "turned off":
        monkeypatch.setenv(FAST_PATH_VARIABLE, "off")
    else:
        del client._client._packet_queue
    assert not PahoLink(settings(), hooks).batches


@pytest.mark.parametrize(("failure", "reported"), [(True, True), (False, False)])
async def test_a_puback_refusal_is_reported_with_its_reason(
    client: MagicMock, hooks: LinkHooks, mocker: MockerFixture, failure: bool, reported: bool
) -> None:
    """An MQTT 5 PUBACK settles its message; a reason code that is a failure goes with it."""
    PahoLink(settings(mqtt5=True), hooks)
    reason = mocker.Mock(is_failure=failure)
    client._client.on_publish(client._client, None, 5, reason, None)
    hooks.settled.assert_called_once_with(5, reason if reported else None)  # type: ignore[attr-defined]


async def test_publish_gives_the_message_id_or_none(client: MagicMock, hooks: LinkHooks) -> None:
    """paho's message id when it took the message; None when the connection is going."""
    link = PahoLink(settings(), hooks)
    client._client.publish.return_value = MagicMock(rc=0, mid=7)
    assert link.publish("t", b"x", 1, False) == 7
    client._client.publish.return_value = MagicMock(rc=4, mid=0)
    assert link.publish("t", b"x", 1, False) is None


def received(topic: bytes, payload: bytes, ids: list[int] | None = None) -> MQTTMessage:
    """A message as paho's reader hands it to on_message."""
    message = MQTTMessage(1, topic)
    message.payload = payload
    if ids is not None:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.SubscriptionIdentifier = ids
        message.properties = properties
    return message


async def test_messages_arrive_in_order_and_end_with_the_connection(
    client: MagicMock, hooks: LinkHooks
) -> None:
    """Messages come out as received, with their identifiers; bad topics are reported; then
    LinkError once the connection is gone."""
    disconnected = client._disconnected = asyncio.get_running_loop().create_future()
    link = PahoLink(settings(mqtt5=True), hooks)
    paho = client._client
    paho.on_message(paho, None, received(b"a/1", b"1", [3]))
    paho.on_message(paho, None, received(b"a/+", b"2"))  # RabbitMQ's rewrite of "a/*"
    paho.on_message(paho, None, received(b"a/\xff", b"3"))
    paho.on_message(paho, None, received(b"a/2", b"4"))
    disconnected.set_exception(MqttError("lost"))
    got: list[Incoming] = []

    async def read() -> None:
        async for message in link.messages():
            got.append(message)

    with pytest.raises(LinkError, match="lost"):
        await read()
    assert [(m.topic, m.payload, m.subscription_ids) for m in got] == [
        ("a/1", b"1", (3,)),
        ("a/2", b"4", ()),
    ]
    assert [c.args[0] for c in hooks.unreadable.call_args_list] == ["a/+", "a/\ufffd"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("graceful", [True, False])
async def test_close_releases_the_client_and_disconnects_only_if_graceful(
    client: MagicMock, hooks: LinkHooks, graceful: bool
) -> None:
    """DISCONNECT when graceful and connected; the sockets are released either way."""
    loop = asyncio.get_running_loop()
    client._connected = loop.create_future()
    client._connected.set_result(None)
    disconnected = client._disconnected = loop.create_future()
    client._lock = asyncio.Lock()
    await client._lock.acquire()
    paho = client._client
    paho.is_connected.return_value = True

    def disconnect() -> int:  # the broker closes the connection on our DISCONNECT
        disconnected.set_result(None)
        return 0

    paho.disconnect.side_effect = disconnect
    link = PahoLink(settings(), hooks)
    await link.close(graceful=graceful)
    assert paho.disconnect.call_count == (1 if graceful else 0)
    paho._reset_sockets.assert_called_once_with()
    assert not client._lock.locked()
