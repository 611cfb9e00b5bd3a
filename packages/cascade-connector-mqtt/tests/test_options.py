"""Constructor options: what is kept, checked, and passed through to aiomqtt."""

from __future__ import annotations

import ssl
import sys
from typing import Any

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing._fake_client import FakeMqtt


def test_hostname_and_port_are_kept() -> None:
    """The broker's address is readable back."""
    connector = MqttConnector(hostname="broker", port=8883)
    assert (connector.hostname, connector.port) == ("broker", 8883)


@pytest.mark.parametrize("name", ["client_id", "identifier"])
async def test_client_id_becomes_identifier(fake_mqtt: FakeMqtt, name: str) -> None:
    """Both client_id and identifier set aiomqtt's identifier."""
    options: dict[str, Any] = {name: "my-client"}
    async with MqttConnector("broker", **options, link=fake_mqtt.link):
        assert fake_mqtt.client.kwargs["identifier"] == "my-client"


async def test_other_options_pass_through(fake_mqtt: FakeMqtt) -> None:
    """Credentials, keepalive, protocol and unknown options reach aiomqtt.Client."""
    async with MqttConnector(
        "broker",
        1884,
        username="u",
        password="p",
        keepalive=7,
        protocol="5",
        clean_session=True,
        link=fake_mqtt.link,
    ):
        client = fake_mqtt.client
        assert (client.hostname, client.port) == ("broker", 1884)
        assert client.kwargs["username"] == "u"
        assert client.kwargs["password"] == "p"
        assert client.kwargs["keepalive"] == 7
        assert client.kwargs["protocol"] == aiomqtt.ProtocolVersion.V5
        assert client.kwargs["clean_session"] is True


async def _tls_context(fake_mqtt: FakeMqtt, **options: Any) -> object:
    """The TLS context the connector hands the MQTT client."""
    async with MqttConnector("broker", presence=False, link=fake_mqtt.link, **options):
        return fake_mqtt.client.kwargs["tls_context"]


async def test_tls_true_makes_a_verifying_context(fake_mqtt: FakeMqtt) -> None:
    """tls=True means a default context that verifies the broker's certificate."""
    context = await _tls_context(fake_mqtt, tls=True)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_tls_context_is_used_as_given(fake_mqtt: FakeMqtt) -> None:
    """An SSLContext is passed on unchanged."""
    context = ssl.create_default_context()
    assert await _tls_context(fake_mqtt, tls=context) is context


async def test_no_tls_by_default(fake_mqtt: FakeMqtt) -> None:
    """Plain TCP unless asked."""
    assert await _tls_context(fake_mqtt) is None


def test_options_the_connector_manages_are_refused() -> None:
    """A will or timeout given to aiomqtt directly would break presence and bounds."""
    with pytest.raises(TypeError, match="will"):
        MqttConnector("broker", will=None)


def test_unknown_protocol_version_is_refused() -> None:
    """Only MQTT 3.1.1 and 5."""
    with pytest.raises(ValueError, match="protocol"):
        MqttConnector("broker", protocol="4.2")


def test_without_aiomqtt_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing aiomqtt gives an ImportError naming the package to install."""
    monkeypatch.setitem(sys.modules, "cascade.connectors.mqtt._paho", None)  # import fails
    with pytest.raises(ImportError, match="pip install cascade-connector-mqtt"):
        MqttConnector("broker")
