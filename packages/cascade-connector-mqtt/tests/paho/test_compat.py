"""The private parts of aiomqtt and paho the connector relies on are checked, not assumed."""

from __future__ import annotations

from typing import Any

import aiomqtt
import aiomqtt.client
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._paho import _compat as client_module


async def test_the_installed_aiomqtt_has_what_the_connector_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real aiomqtt passes the check (run at the lowest and highest pinned versions)."""
    monkeypatch.setattr(client_module, "_aiomqtt_checked", [])
    client_module.check_aiomqtt()
    assert client_module._aiomqtt_checked == [""]


async def test_an_aiomqtt_without_them_fails_connect_with_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renamed private attribute: connect() raises a RuntimeError naming it; nothing runs."""

    class Renamed(aiomqtt.Client):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            del self._misc_task

    monkeypatch.setattr(client_module, "_aiomqtt_checked", [])
    monkeypatch.setattr(aiomqtt.client, "Client", Renamed)
    connector = MqttConnector("127.0.0.1", 1)
    with pytest.raises(RuntimeError, match="_misc_task"):
        await connector.connect()
    assert not connector.is_connected
    await connector.disconnect()


async def test_a_paho_message_without_its_raw_topic_fails_connect_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The link reads a message's topic as received: a paho without it is named at connect()."""

    class Renamed(mqtt.MQTTMessage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            del self._topic

    monkeypatch.setattr(client_module, "_aiomqtt_checked", [])
    monkeypatch.setattr(mqtt, "MQTTMessage", Renamed)
    with pytest.raises(RuntimeError, match=r"MQTTMessage\._topic"):
        await MqttConnector("127.0.0.1", 1).connect()


def test_the_installed_paho_has_the_fast_paths_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path (sending and reading in bulk) is on with this paho, and off when the
    environment says so."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2)
    monkeypatch.delenv(client_module.FAST_PATH_VARIABLE, raising=False)
    assert client_module.fast_wire_supported(paho)
    assert client_module.bulk_read_supported(paho)
    monkeypatch.setenv(client_module.FAST_PATH_VARIABLE, "off")
    assert not client_module.fast_wire_supported(paho)
    assert not client_module.bulk_read_supported(paho)
