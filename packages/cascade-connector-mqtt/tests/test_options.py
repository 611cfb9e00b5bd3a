"""Constructor options: what is kept, checked, and passed on to each connection."""

from __future__ import annotations

import ssl
import sys
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker


def test_hostname_and_port_are_kept() -> None:
    """The broker's address is readable back."""
    connector = MqttConnector(hostname="broker", port=8883)
    assert (connector.hostname, connector.port) == ("broker", 8883)


async def test_client_id_reaches_the_link(broker: FakeBroker) -> None:
    """client_id is the MQTT client id of every connection."""
    async with MqttConnector("broker", client_id="my-client", link=broker):
        assert broker.link.settings.client_id == "my-client"


def test_aiomqtts_names_of_our_options_are_refused() -> None:
    """aiomqtt's identifier (client_id's former name here) and tls_context would pass to it
    beside ours: refused, naming ours."""
    with pytest.raises(TypeError, match="identifier= is MqttConnector's client_id="):
        MqttConnector("broker", identifier="my-client")
    with pytest.raises(TypeError, match="tls_context= is MqttConnector's tls="):
        MqttConnector("broker", tls_context=ssl.create_default_context())


async def test_options_reach_the_link(broker: FakeBroker) -> None:
    """Credentials, keepalive, protocol and unknown options reach each connection's settings."""
    async with MqttConnector(
        "broker",
        1884,
        username="u",
        password="p",
        keepalive=7,
        protocol="5",
        clean_session=True,
        link=broker,
    ):
        settings = broker.link.settings
        assert (settings.hostname, settings.port) == ("broker", 1884)
        assert (settings.username, settings.password) == ("u", "p")
        assert settings.keepalive == 7
        assert settings.mqtt5
        assert settings.client_options == {"clean_session": True}


async def _tls_context(broker: FakeBroker, **options: Any) -> object:
    """The TLS context the connector hands the link."""
    async with MqttConnector("broker", presence=False, link=broker, **options):
        return broker.link.settings.tls_context


async def test_tls_true_makes_a_verifying_context(broker: FakeBroker) -> None:
    """tls=True means a default context that verifies the broker's certificate."""
    context = await _tls_context(broker, tls=True)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_tls_context_is_used_as_given(broker: FakeBroker) -> None:
    """An SSLContext is passed on unchanged."""
    context = ssl.create_default_context()
    assert await _tls_context(broker, tls=context) is context


async def test_no_tls_by_default(broker: FakeBroker) -> None:
    """Plain TCP unless asked."""
    assert await _tls_context(broker) is None


def test_options_the_connector_manages_are_refused() -> None:
    """A will or timeout given to aiomqtt directly would break presence and bounds."""
    with pytest.raises(TypeError, match="will"):
        MqttConnector("broker", will=None)


async def test_session_expiry_reaches_the_link(broker: FakeBroker) -> None:
    """A persistent session's expiry, in whole seconds, reaches each connection's settings."""
    async with MqttConnector("broker", client_id="rec", session_expiry=86400.5, link=broker):
        assert broker.link.settings.session_expiry == 86400
    async with MqttConnector("broker", client_id="rec", link=broker):
        assert broker.link.settings.session_expiry is None


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"session_expiry": 60}, ValueError, "needs a client_id"),
        ({"client_id": "r", "session_expiry": -1}, ValueError, "from 0 to 4294967295"),
        ({"client_id": "r", "session_expiry": 2**32}, ValueError, "from 0 to 4294967295"),
        (
            {"client_id": "r", "session_expiry": 60, "clean_session": False},
            TypeError,
            "clean_session",
        ),
    ],
)
def test_a_session_expiry_that_cannot_work_is_refused(
    options: dict[str, Any], error: type[Exception], says: str
) -> None:
    """Without a client id no broker can find the session again; the flags are its own."""
    with pytest.raises(error, match=says):
        MqttConnector("broker", **options)


def test_unknown_protocol_version_is_refused() -> None:
    """Only MQTT 3.1.1 and 5."""
    with pytest.raises(ValueError, match="protocol"):
        MqttConnector("broker", protocol="4.2")


def test_without_aiomqtt_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing aiomqtt gives an ImportError naming the package to install."""
    monkeypatch.setitem(sys.modules, "cascade.connectors.mqtt._paho", None)  # import fails
    with pytest.raises(ImportError, match="pip install cascade-connector-mqtt"):
        MqttConnector("broker")
