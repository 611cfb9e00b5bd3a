"""Ids and a shared source id over a real broker: refused early, long ones work, conflicts seen."""

from __future__ import annotations

import logging

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import InvalidIdError, Message, status_topic
from cascade.testkit import BrokerEndpoint, Inbox

MAX_ID_BYTES = 1024  # the protocol's bound, as docs/protocol.md states it


async def test_a_70k_source_id_is_refused_before_any_connection(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """It used to kill the background task at CONNECT ("Task exception was never retrieved")."""
    with pytest.raises(InvalidIdError, match=r"^source_id is 70,000 bytes long"):
        MqttConnector(
            mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="x" * 70_000
        )


async def test_ids_at_the_limit_work(mqtt_broker: BrokerEndpoint, prefix: str) -> None:
    """A 1,024-byte prefix and source id (multi-byte characters): birth and will go through."""
    long_prefix = prefix + "/" + "p" * (MAX_ID_BYTES - len(prefix) - 1)
    source = "é" * (MAX_ID_BYTES // 2)
    topic = status_topic(source, long_prefix)
    async with MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=long_prefix, source_id="observer"
    ) as observer:
        inbox = Inbox()
        await observer.subscribe(topic, inbox)
        engine = MqttConnector(
            mqtt_broker.host, mqtt_broker.port, topic_prefix=long_prefix, source_id=source
        )
        await engine.connect(require=True)
        birth = await inbox.until(lambda m: m.payload["status"] == "online")
        assert birth.payload["source"] == source
        await engine.disconnect()
        offline = await inbox.until(lambda m: m.payload["status"] == "offline")
        assert offline.payload["session"] == engine.session
        await observer.publish(topic, b"", qos=1, retain=True)


def _answer(session: int, other: int) -> object:
    def match(message: Message) -> bool:
        payload = message.payload
        return (
            payload.get("status") == "online"
            and payload.get("session") == session
            and payload.get("conflict_session") == other
        )

    return match


@pytest.mark.parametrize("survivor", ["first", "second"])
async def test_two_connectors_with_one_source_id(
    mqtt_broker: BrokerEndpoint,
    observer: MqttConnector,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    survivor: str,
) -> None:
    """One ends: the other, still running, stays shown online, and the conflict is logged."""
    topic = status_topic("shared", prefix)
    inbox = Inbox()
    await observer.subscribe(topic, inbox)
    options = {"topic_prefix": prefix, "source_id": "shared"}
    first = MqttConnector(mqtt_broker.host, mqtt_broker.port, **options)  # type: ignore[arg-type]
    second = MqttConnector(mqtt_broker.host, mqtt_broker.port, **options)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.ERROR, "cascade.connectors.mqtt"):
            await first.connect(require=True)
            await second.connect(require=True)
            # the first sees the second's birth and answers, naming it
            await inbox.until(_answer(first.session, second.session))  # type: ignore[arg-type]
            alive, ending = (first, second) if survivor == "first" else (second, first)
            await ending.disconnect()
            await inbox.until(lambda m: m.payload["status"] == "offline")
            shown = await inbox.until(_answer(alive.session, ending.session))  # type: ignore[arg-type]
            assert shown.payload["session"] == alive.session
        while True:  # what a reader arriving now is given: the retained status
            late = Inbox()
            handle = await observer.subscribe(topic, late)
            await handle.unsubscribe()
            given = [m for m in late.all if m.retain]  # not a live answer meanwhile
            if [m.payload["status"] for m in given] != ["offline"]:
                break
            # another offline of the ended one came after (its will, when its connection
            # closed before its DISCONNECT): the survivor answers that too
            await inbox.until(_answer(alive.session, ending.session))  # type: ignore[arg-type]
        assert [(m.payload["status"], m.payload["session"]) for m in given] == [
            ("online", alive.session)
        ]
        assert given[0].payload["conflict_session"] == ending.session
        conflicts = [m for m in caplog.messages if "source id 'shared' is also used" in m]
        assert conflicts, caplog.messages
    finally:
        await first.disconnect()
        await second.disconnect()
    await observer.publish(topic, b"", qos=1, retain=True)
