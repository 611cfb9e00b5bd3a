"""A held task, its deadline's warning and the run's end, posted in that order by a notifier
(in this process) reading a real mosquitto."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.notify import Destinations, Notifier, Webhook
from cascade.runtime import Engine, gate, task
from cascade.testkit import MosquittoBroker, WebhookReceiver


@task(on_failure="hold")
def load() -> int:
    raise ConnectionError("the API is down")


@pytest.mark.asyncio
async def test_held_then_warned_then_failed_at_the_deadline(
    mosquitto_broker: MosquittoBroker, receiver: WebhookReceiver
) -> None:
    """A hold of 3 s warned 2 s before its deadline: task.held, hold.deadline, run.failed, each
    with the task, its error and (held) the deadline and its default; slack bodies."""
    host, port = mosquitto_broker.host, mosquitto_broker.port
    reader = MqttConnector(host, port, source_id=f"notify-{uuid.uuid4().hex[:6]}", presence=False)
    hook = Webhook(receiver.url, destinations=Destinations(allow=["127.0.0.1"]))
    notifier = Notifier(
        reader, hook, fmt="slack", warn_before=2.0,
        events=["task.held", "hold.deadline", "run.failed"], dashboard_url="http://dash.example",
    )  # fmt: skip
    await notifier.start()
    await reader.connect(require=True)
    try:
        engine = Engine(
            MqttConnector(host, port, source_id=f"eng-{uuid.uuid4().hex[:6]}"),
            hold_timeout=3.0, heartbeat_interval=None,
        )  # fmt: skip
        with pytest.raises(Exception, match="the API is down"):
            await engine.run(load())
        assert await asyncio.to_thread(receiver.wait_for, 3, 0, 10)
    finally:
        await notifier.stop()
        await reader.disconnect()
    texts = [posted["text"] for _, posted in receiver.posts]
    assert texts[0].startswith("task load (load-")
    assert "is held at attempt 1" in texts[0]
    assert texts[1].startswith("deadline near: task load")
    assert "failed in local/default: task load" in texts[2]
    held = receiver.posts[0][1]["blocks"]
    assert "error: ConnectionError: the API is down" in held[1]["text"]["text"]
    assert "fail at " in held[1]["text"]["text"]
    assert "<http://dash.example/runs/" in held[2]["text"]["text"]
    warned_at, failed_at = receiver.posts[1][0], receiver.posts[2][0]
    assert 1.0 < failed_at - warned_at < 3.0  # warned about 2 s before its default applied


@pytest.mark.asyncio
async def test_a_hold_already_near_its_deadline_is_one_notification(
    mosquitto_broker: MosquittoBroker, receiver: WebhookReceiver
) -> None:
    """A gate of a 2 s deadline, read with the default --warn-before (an hour): its deadline is
    inside the window when it is held, so task.held (saying the deadline) is all that is posted
    of it; no "deadline near" a moment later. Then the run's end, at the deadline."""
    host, port = mosquitto_broker.host, mosquitto_broker.port
    reader = MqttConnector(host, port, source_id=f"notify-{uuid.uuid4().hex[:6]}", presence=False)
    hook = Webhook(receiver.url, destinations=Destinations(allow=["127.0.0.1"]))
    notifier = Notifier(
        reader, hook, fmt="generic",
        events=["task.held", "hold.deadline", "run.failed", "run.succeeded"],
    )  # fmt: skip
    await notifier.start()
    await reader.connect(require=True)
    try:
        engine = Engine(
            MqttConnector(host, port, source_id=f"eng-{uuid.uuid4().hex[:6]}"),
            heartbeat_interval=None,
        )
        assert await engine.run(gate("ship it?", deadline=2.0, default="complete")) is True
        assert await asyncio.to_thread(receiver.wait_for, 2, 0, 10)
        await notifier.stop()  # what was due is posted by then
    finally:
        await notifier.stop()
        await reader.disconnect()
    kinds = [posted["event"] for _, posted in receiver.posts]
    assert kinds == ["task.held", "run.succeeded"], receiver.posts
    held = receiver.posts[0][1]
    assert held["prompt"] == "ship it?"
    assert held["default"] == "complete"
    assert 0 < held["deadline"] - receiver.posts[0][0] <= 2.5
