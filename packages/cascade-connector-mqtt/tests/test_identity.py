"""Ids refused at construction; a second connector with our source id detected and answered."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._paho._reasons import describe_failure
from cascade.connectors.mqtt.testing import Inbox
from cascade.connectors.mqtt.testing._fake_client import FakeMqtt
from cascade.interfaces import InvalidIdError
from cascade.interfaces.connector_kit import MAX_ID_BYTES

STATUS = "cascade/status/engine-1"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"source_id": "x" * 70_000}, "source_id"),
        ({"source_id": "engine-\udcff"}, "source_id"),
        ({"source_id": "é" * (MAX_ID_BYTES // 2 + 1)}, "source_id"),
        ({"topic_prefix": "p" * (MAX_ID_BYTES + 1)}, "topic_prefix"),
        ({"topic_prefix": "acme/\udcff"}, "topic_prefix"),
    ],
)
def test_an_id_that_cannot_form_a_topic_is_refused_at_construction(
    options: dict[str, str], field: str
) -> None:
    """A ValueError naming the field, not a background task dying at the first CONNECT."""
    with pytest.raises(InvalidIdError, match=rf"^{field} ") as caught:
        MqttConnector("broker", **options)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_an_id_at_the_limit_is_accepted() -> None:
    """1,024 bytes is allowed; wildcards are sanitized into one level as before."""
    connector = MqttConnector("broker", source_id="a/b" + "x" * (MAX_ID_BYTES - 3))
    assert connector.source_id.startswith("a_b")


async def _status_inbox(connector: MqttConnector) -> Inbox:
    inbox = Inbox()
    await connector.subscribe(STATUS, inbox)
    return inbox


async def test_another_online_with_our_source_id_is_logged_and_answered(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """One error naming the conflict; our online again, naming the other session."""
    async with MqttConnector("broker", source_id="engine-1", link=fake_mqtt.link) as connector:
        inbox = await _status_inbox(connector)
        other = {"status": "online", "source": "engine-1", "session": connector.session + 7}
        with caplog.at_level(logging.ERROR, "cascade.connectors.mqtt"):
            for _ in range(3):  # repeated: answered and logged once
                fake_mqtt.client.deliver(STATUS, json.dumps(other).encode(), 1, True)
            answer = await inbox.until(lambda m: m.payload.get("conflict_session") is not None)
        assert answer.payload["status"] == "online"
        assert answer.payload["session"] == connector.session
        assert answer.payload["conflict_session"] == other["session"]
        conflicts = [r for r in caplog.records if "source id 'engine-1'" in r.getMessage()]
        assert len(conflicts) == 1
        assert conflicts[0].levelno == logging.ERROR
        assert "give each engine its own source_id" in conflicts[0].getMessage()
        answers = [
            json.loads(raw)
            for topic, raw, _, _ in fake_mqtt.paho.published
            if topic == STATUS and b"conflict_session" in raw
        ]
        assert len(answers) == 1


async def test_the_other_connectors_offline_is_answered_with_our_online(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """The other engine ended: its retained offline would hide us, so we announce again."""
    async with MqttConnector("broker", source_id="engine-1", link=fake_mqtt.link) as connector:
        inbox = await _status_inbox(connector)
        newer = connector.session + 5
        with caplog.at_level(logging.ERROR, "cascade.connectors.mqtt"):
            offline = {"status": "offline", "source": "engine-1", "session": newer}
            fake_mqtt.client.deliver(STATUS, json.dumps(offline).encode(), 1, True)
            answer = await inbox.until(
                lambda m: m.payload["status"] == "online" and "conflict_session" in m.payload
            )
        assert answer.payload["conflict_session"] == newer
        assert any("also used by another connector" in m for m in caplog.messages)


async def test_a_predecessors_late_will_is_no_conflict(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """An older session never seen live (a restarted engine's old will): answered, not an error."""
    async with MqttConnector("broker", source_id="engine-1", link=fake_mqtt.link) as connector:
        inbox = await _status_inbox(connector)
        with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
            will = {"status": "offline", "source": "engine-1", "session": connector.session - 1}
            fake_mqtt.client.deliver(STATUS, json.dumps(will).encode(), 1, True)
            answer = await inbox.until(lambda m: m.payload["status"] == "online")
        assert "conflict_session" not in answer.payload
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "stale offline" in caplog.messages[0]


def test_timeouts_are_described_with_their_length() -> None:
    """aiomqtt's 'Operation timed out' and a bare TimeoutError both say how long was waited."""
    from aiomqtt import MqttError

    for exc in (MqttError("Operation timed out"), TimeoutError()):
        assert describe_failure(exc, 2.5) == (
            "no answer from the broker within 2.5 s (connect_timeout)"
        )
    assert describe_failure(RuntimeError(), 1) == "RuntimeError (without a message)"
    assert describe_failure(MqttError("gone"), 1) == "gone"


async def test_nothing_is_answered_once_disconnect_has_begun(fake_mqtt: FakeMqtt) -> None:
    """Its graceful offline stays the last word: no online after it, whatever arrives."""
    connector = MqttConnector(
        "broker", source_id="engine-1", flush_timeout=0.5, link=fake_mqtt.link
    )
    await connector.connect()
    inbox = await _status_inbox(connector)
    paho = fake_mqtt.paho
    paho.auto_ack = False  # the flush waits: disconnect() is under way meanwhile
    await connector.publish("t/x", b"{}", qos=1)
    stopping = asyncio.create_task(connector.disconnect())
    await asyncio.sleep(0)  # disconnect() has begun: it is flushing
    other = {"status": "online", "source": "engine-1", "session": connector.session + 7}
    fake_mqtt.client.deliver(STATUS, json.dumps(other).encode(), 1, True)
    await inbox.until(lambda m: m.payload.get("session") == other["session"])
    paho.auto_ack = True
    paho.ack_all()
    await stopping
    answers = [raw for topic, raw, _, _ in paho.published if b"conflict_session" in raw]
    assert answers == []
