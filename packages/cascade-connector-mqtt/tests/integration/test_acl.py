"""Publishes an ACL denies: counted as refused and reported once per topic (MQTT 5)."""

from __future__ import annotations

import logging

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import (
    MOSQUITTO_ONLY,
    MosquittoBroker,
    mosquitto_path,
    skip_on_family,
)


@pytest.mark.mqtt5
@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_refused_publishes_are_counted_and_reported_once(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """MQTT 5: a PUBACK with "Not authorized" counts in stats.refused, not in published.

    mosquitto 2.0 may also close the connection after such a PUBACK (its issue
    #2579): the connector then resends one message at a time, so every message
    is still settled, with at most two connections lost per refused one.
    """
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    acl = f"user engine\ntopic readwrite {prefix}/ok/#\ntopic readwrite {prefix}/_marker/#\n"
    acl += f"topic write {prefix}/status/#\n"
    with MosquittoBroker(users={"engine": "pw"}, acl=acl) as broker:
        connector = MqttConnector(
            broker.host,
            broker.port,
            username="engine",
            password="pw",
            protocol="5",
            topic_prefix=prefix,
            source_id="acl",
            backoff_initial=0.01,
            backoff_max=0.1,  # each of those connections is short-lived: keep retries quick
        )
        await connector.connect(require=True)
        with caplog.at_level(logging.WARNING, logger="cascade.connectors.mqtt"):
            for i in range(5):
                await connector.publish(f"{prefix}/ok/{i}", {"i": i}, qos=1)
                await connector.publish(f"{prefix}/denied", {"i": i}, qos=1)
            await connector.flush(5)
        await connector.disconnect()
    assert connector.stats.refused == 5
    assert connector.stats.published == 5
    assert connector.stats.reconnects <= 2 * 5
    refusals = [r for r in caplog.records if "refused a message" in r.getMessage()]
    assert len(refusals) == 1
    assert f"{prefix}/denied" in refusals[0].getMessage()
    assert "Not authorized" in refusals[0].getMessage()
