"""Over a real broker: ids refused when the engine is made, long ids work, timeouts named."""

from __future__ import annotations

import asyncio
import json
import logging

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import InvalidIdError
from cascade.runtime import Engine, task
from cascade.testkit import BrokerEndpoint, MosquittoBroker

MAX_ID_BYTES = 1024  # the protocol's bound, as docs/protocol.md states it


@task
async def one() -> int:
    return 1


async def test_a_bad_org_id_from_the_environment_is_refused_by_engine(
    mqtt_broker: BrokerEndpoint, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to make every run fail at its start; now Engine(...) says which variable."""
    monkeypatch.setenv("CASCADE_ORG_ID", "acme\udcff")
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    with pytest.raises(InvalidIdError, match=r"^org_id is not valid UTF-8.*\$CASCADE_ORG_ID"):
        Engine(connector)


async def test_ids_at_the_limit_reach_a_plain_subscriber(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """1,024-byte org and project ids (multi-byte too): telemetry flows on their topics."""
    org, project = "o" * MAX_ID_BYTES, "é" * (MAX_ID_BYTES // 2)
    await plain_client.subscribe(f"{prefix}/telemetry/{org}/{project}/+/events", qos=1)
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    engine = Engine(connector, org_id=org, project_id=project, heartbeat_interval=None)
    assert await engine.run(one()) == 1

    async def first() -> dict[str, object]:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            return json.loads(message.payload)  # type: ignore[no-any-return]
        raise AssertionError("no message")

    envelope = await asyncio.wait_for(first(), 10)
    assert (envelope["org_id"], envelope["project_id"]) == (org, project)


async def test_a_disconnect_cut_short_by_a_hung_broker_is_logged_with_its_limit(
    mosquitto_broker: MosquittoBroker, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Was 'disconnect failed: TimeoutError: ' (empty): now what timed out and after how long."""
    connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix)
    engine = Engine(connector, heartbeat_interval=None, shutdown_timeout=0.3)

    @task
    def hang_the_broker() -> None:
        mosquitto_broker.pause()

    try:
        with caplog.at_level(logging.WARNING, "cascade.runtime.engine"):
            await engine.run(hang_the_broker())
        assert "disconnect did not finish within 0.3 s (shutdown_timeout)" in caplog.messages
        assert not [m for m in caplog.messages if m.rstrip().endswith(":")]
    finally:
        mosquitto_broker.resume()
        await connector.disconnect()
