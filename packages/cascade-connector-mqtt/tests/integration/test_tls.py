"""TLS with a CA and server certificate made by the test, plus a password file."""

from __future__ import annotations

import ssl
import time

import pytest

from cascade.connectors.mqtt import ConnectRefusedError, MqttConnector
from cascade.interfaces import ConnectError
from cascade.testkit import Inbox, MosquittoBroker, free_port


def tls_connector(broker: MosquittoBroker, prefix: str, **options: object) -> MqttConnector:
    """A connector for the broker's TLS listener, trusting the test CA."""
    assert broker.certificates is not None
    assert broker.tls_port is not None
    return MqttConnector(
        "localhost",
        broker.tls_port,
        tls_ca_file=str(broker.certificates.ca_cert),
        topic_prefix=prefix,
        connect_timeout=5.0,
        **options,  # type: ignore[arg-type]
    )


async def test_right_credentials_over_tls_work(
    mqtt_tls_broker: MosquittoBroker, prefix: str
) -> None:
    """The test CA verifies the server; the user from the password file gets in and publishes."""
    connector = tls_connector(mqtt_tls_broker, prefix, username="cascade", password="secret")
    await connector.connect(require=True)
    try:
        inbox = Inbox()
        await connector.subscribe(f"{prefix}/echo", inbox)
        await connector.publish(f"{prefix}/echo", {"over": "tls"}, qos=1)
        await connector.flush(5)
        assert (await inbox.next()).payload == {"over": "tls"}
    finally:
        await connector.disconnect()


async def test_wrong_password_fails_clearly(mqtt_tls_broker: MosquittoBroker, prefix: str) -> None:
    """A wrong password raises a ConnectError naming host, port and the refusal, promptly."""
    connector = tls_connector(mqtt_tls_broker, prefix, username="cascade", password="wrong")
    start = time.monotonic()
    with pytest.raises(ConnectRefusedError) as info:
        await connector.connect(require=True)
    assert time.monotonic() - start < connector.connect_timeout + 1
    assert isinstance(info.value, ConnectError)
    assert info.value.port == mqtt_tls_broker.tls_port
    assert "bad user name or password" in str(info.value) or "not authorised" in str(info.value)
    assert not connector.is_connected


async def test_untrusted_server_certificate_is_a_tls_failure(
    mqtt_tls_broker: MosquittoBroker, prefix: str
) -> None:
    """Without the test CA, the server's certificate does not verify."""
    assert mqtt_tls_broker.tls_port is not None
    connector = MqttConnector(
        "localhost",
        mqtt_tls_broker.tls_port,
        tls=ssl.create_default_context(),
        username="cascade",
        password="secret",
        topic_prefix=prefix,
    )
    with pytest.raises(ConnectError, match="TLS failure"):
        await connector.connect(require=True)


async def test_nothing_listening_is_refused_clearly(prefix: str) -> None:
    """A port nobody listens on gives 'connection refused' with host and port."""
    port = free_port()
    connector = MqttConnector("127.0.0.1", port, topic_prefix=prefix)
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}: connection refused"):
        await connector.connect(require=True)
    assert not connector.is_connected


async def test_tls_only_broker_has_no_plaintext_listener(prefix: str) -> None:
    """MosquittoBroker(tls=True, tls_only=True) listens with TLS on its one port, nothing else."""
    with MosquittoBroker(tls=True, tls_only=True, users={"u": "p"}) as broker:
        assert broker.port == broker.tls_port
        assert f"listener {broker.port} " in broker.config_path.read_text()
        assert broker.config_path.read_text().count("listener ") == 1
        connector = tls_connector(broker, prefix, username="u", password="p")
        await connector.connect(require=True)
        await connector.disconnect()
        plain = MqttConnector(broker.host, broker.port, topic_prefix=prefix, connect_timeout=2.0)
        with pytest.raises(ConnectError):
            await plain.connect(require=True)


async def test_plaintext_client_on_the_tls_port_fails_at_once(
    mqtt_tls_broker: MosquittoBroker, prefix: str
) -> None:
    """The broker resets a plaintext CONNECT on its TLS port: as a node restarting does, so it is
    tried again until connect_timeout, then a clear error saying so, not a bare timeout."""
    assert mqtt_tls_broker.tls_port is not None
    connector = MqttConnector(
        mqtt_tls_broker.host,
        mqtt_tls_broker.tls_port,
        username="cascade",
        password="secret",
        topic_prefix=prefix,
        connect_timeout=2.0,
    )
    start = time.monotonic()
    with pytest.raises(ConnectError) as info:
        await connector.connect(require=True)
    assert time.monotonic() - start < 4.0
    assert "closed the connection during the handshake" in str(info.value)
    assert "attempts within 2 s" in str(info.value)
    assert not isinstance(info.value, ConnectRefusedError)
