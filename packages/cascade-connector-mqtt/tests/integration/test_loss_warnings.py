"""The warning for a lost connection names a cause only when the broker's behaviour shows it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import MosquittoBroker


class _Heard(logging.Handler):
    """Listens from its creation; :meth:`wait` returns once a warning contained ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.event = asyncio.Event()
        logging.getLogger("cascade.connectors.mqtt").addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()

    async def wait(self, seconds: float = 10.0) -> None:
        try:
            async with bounded(seconds):
                await self.event.wait()
        finally:
            logging.getLogger("cascade.connectors.mqtt").removeHandler(self)


async def test_killed_broker_is_not_blamed_on_a_client_id(
    mosquitto_broker: MosquittoBroker, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker stopped soon after the CONNACK: the warning says the connection ended, no guess."""
    broker = mosquitto_broker
    connector = MqttConnector(
        broker.host, broker.port, topic_prefix=prefix, backoff_initial=0.05, backoff_max=30
    )
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect(require=True)
        try:
            refused = _Heard("cannot connect")
            broker.stop()
            await refused.wait()
            broker.start()
            assert await connector.wait_connected(10)
        finally:
            await connector.disconnect()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    ended = [w for w in warnings if "ended" in w]
    assert ended, warnings
    assert not [w for w in warnings if "client id" in w or "ACL" in w], warnings


async def test_connections_taken_over_again_and_again_name_the_client_id(
    client_id_twins: tuple[MqttConnector, MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    """Two connectors sharing a client id: the repeated drops are put down to the client id."""
    first, second = client_id_twins
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        repeated = _Heard("in a row")
        await first.connect(require=True)
        await second.connect(require=True)
        try:
            await repeated.wait()
        finally:
            await first.disconnect()
            await second.disconnect()
    messages = [r.getMessage() for r in caplog.records if "in a row" in r.getMessage()]
    assert "another client with the same client id?" in messages[0]
