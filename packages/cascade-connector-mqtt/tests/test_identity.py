"""Ids refused at construction; the layout of an engine's topics, as the connector says it; a
second connector with our source id detected and answered."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker
from cascade.interfaces import InvalidIdError
from cascade.testkit import Inbox

MAX_ID_BYTES = 1024  # the protocol's bound, as docs/protocol.md states it

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
    """1,024 bytes is allowed, as given (topic levels encode it)."""
    connector = MqttConnector("broker", source_id="a/b" + "x" * (MAX_ID_BYTES - 3))
    assert connector.source_id.startswith("a/b")


@pytest.mark.parametrize(
    ("given", "variable", "sourced"),
    [
        (None, None, False),
        (True, None, True),
        (None, "1", True),
        (None, "off", False),
        (False, "yes", False),  # the argument wins over the variable
        (True, "0", True),
    ],
)
def test_the_layout_is_the_argument_else_the_variable_else_plain(
    given: bool | None, variable: str | None, sourced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sourced_topics=``, else ``CASCADE_SOURCED_TOPICS``, else the plain layout: what
    the connector tells an engine (``Connector.sourced_topics``)."""
    monkeypatch.delenv("CASCADE_SOURCED_TOPICS", raising=False)
    if variable is not None:
        monkeypatch.setenv("CASCADE_SOURCED_TOPICS", variable)
    assert MqttConnector("broker", sourced_topics=given).sourced_topics is sourced


def test_a_layout_variable_it_cannot_read_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value that is neither on nor off is an error naming the variable, not a guess."""
    monkeypatch.setenv("CASCADE_SOURCED_TOPICS", "maybe")
    with pytest.raises(ValueError, match="CASCADE_SOURCED_TOPICS"):
        MqttConnector("broker")


async def _status_inbox(connector: MqttConnector) -> Inbox:
    inbox = Inbox()
    await connector.subscribe(STATUS, inbox)
    return inbox


async def test_another_online_with_our_source_id_is_logged_and_answered(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """One error naming the conflict; our online again, naming the other session."""
    async with MqttConnector("broker", source_id="engine-1", link=broker) as connector:
        inbox = await _status_inbox(connector)
        other = {"status": "online", "source": "engine-1", "session": connector.session + 7}
        with caplog.at_level(logging.ERROR, "cascade.connectors.mqtt"):
            for _ in range(3):  # repeated: answered and logged once
                broker.link.deliver(STATUS, json.dumps(other).encode(), 1, True)
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
            for topic, raw in ((m.topic, m.payload) for m in broker.link.sent)
            if topic == STATUS and b"conflict_session" in raw
        ]
        assert len(answers) == 1


async def test_a_live_peers_retained_online_is_answered_at_connect(broker: FakeBroker) -> None:
    """The status the birth replaces is read first: a connector already live with this source
    id is named at once (its answer to the birth could come before a later SUBSCRIBE, and the
    survivor of the two was then shown without the conflict)."""
    peer = {"status": "online", "source": "engine-1", "session": 1}
    broker.retained[STATUS] = json.dumps(peer).encode()
    async with MqttConnector("broker", source_id="engine-1", link=broker) as connector:
        inbox = await _status_inbox(connector)
        answer = await inbox.until(lambda m: m.payload.get("conflict_session") == 1)
        assert answer.payload["session"] == connector.session


async def test_the_other_connectors_offline_is_answered_with_our_online(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The other engine ended: its retained offline would hide us, so we announce again."""
    async with MqttConnector("broker", source_id="engine-1", link=broker) as connector:
        inbox = await _status_inbox(connector)
        newer = connector.session + 5
        with caplog.at_level(logging.ERROR, "cascade.connectors.mqtt"):
            offline = {"status": "offline", "source": "engine-1", "session": newer}
            broker.link.deliver(STATUS, json.dumps(offline).encode(), 1, True)
            answer = await inbox.until(
                lambda m: m.payload["status"] == "online" and "conflict_session" in m.payload
            )
        assert answer.payload["conflict_session"] == newer
        assert any("also used by another connector" in m for m in caplog.messages)


async def test_a_predecessors_late_will_is_no_conflict(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """An older session never seen live (a restarted engine's old will): answered, not an error."""
    async with MqttConnector("broker", source_id="engine-1", link=broker) as connector:
        inbox = await _status_inbox(connector)
        with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
            will = {"status": "offline", "source": "engine-1", "session": connector.session - 1}
            broker.link.deliver(STATUS, json.dumps(will).encode(), 1, True)
            answer = await inbox.until(lambda m: m.payload["status"] == "online")
        assert "conflict_session" not in answer.payload
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "stale offline" in caplog.messages[0]


async def test_the_previous_engines_clean_offline_is_replaced_without_a_word(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The next engine of one process (or a restart) reads its predecessor's retained offline
    before its birth replaces it: a normal restart, no warning, no second online."""
    async with MqttConnector("broker", source_id="engine-1", link=broker) as first:
        pass
    assert json.loads(broker.retained[STATUS])["reason"] == "shutdown"
    with caplog.at_level(logging.DEBUG, "cascade.connectors.mqtt"):
        async with MqttConnector("broker", source_id="engine-1", link=broker) as second:
            inbox = await _status_inbox(second)
            await inbox.until(lambda m: m.payload.get("session") == second.session)
    assert second.session > first.session
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    births = [
        m for m in broker.link.sent if m.topic == STATUS and b'"online"' in m.payload
    ]  # fmt: skip
    assert len(births) == 1  # the second connector's own: not announced again


async def test_nothing_is_answered_once_disconnect_has_begun(broker: FakeBroker) -> None:
    """Its graceful offline stays the last word: no online after it, whatever arrives."""
    connector = MqttConnector("broker", source_id="engine-1", flush_timeout=0.5, link=broker)
    await connector.connect()
    inbox = await _status_inbox(connector)
    link = broker.link
    link.auto_settle = False  # the flush waits: disconnect() is under way meanwhile
    await connector.publish("t/x", b"{}", qos=1)
    stopping = asyncio.create_task(connector.disconnect())
    await asyncio.sleep(0)  # disconnect() has begun: it is flushing
    other = {"status": "online", "source": "engine-1", "session": connector.session + 7}
    broker.link.deliver(STATUS, json.dumps(other).encode(), 1, True)
    await inbox.until(lambda m: m.payload.get("session") == other["session"])
    link.auto_settle = True
    link.settle_all()
    await stopping
    answers = [m.payload for m in link.sent if b"conflict_session" in m.payload]
    assert answers == []
