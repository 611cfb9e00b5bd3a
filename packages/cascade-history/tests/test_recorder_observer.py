"""The recorder's observer: it sees every message the recorder receives, and its failures cost
the history nothing."""

from __future__ import annotations

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Recorder
from cascade.interfaces import Message, events_topic

from .messages import T0, iso

ENVELOPE = {
    "ts": iso(T0),
    "run_id": "r1",
    "org_id": "local",
    "project_id": "default",
    "source": "s",
    "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"},
}


@pytest.mark.parametrize("fails", [False, True])
async def test_the_observer_sees_every_message(history: History, fails: bool) -> None:
    """Valid, copied and invalid messages all reach the observer; one that raises is logged and
    the message is recorded all the same."""
    broker = InMemoryBroker()
    seen: list[str] = []

    def observe(message: Message) -> None:
        seen.append(message.topic)
        if fails:
            raise RuntimeError("an observer's bug")

    topic = events_topic("local", "default", "r1")
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, observe=observe)
        await recorder.start()
        async with InMemoryConnector(broker, presence=False) as engine:
            for payload in (ENVELOPE, ENVELOPE, {"run_id": 3}):
                await engine.publish(topic, payload, qos=1)
        await broker.idle()
        await recorder.flush(timeout=5)
        await recorder.stop()
    assert seen == [topic] * 3
    stats = recorder.stats
    assert (stats.received, stats.stored, stats.duplicates, stats.rejected) == (3, 1, 1, 1)
