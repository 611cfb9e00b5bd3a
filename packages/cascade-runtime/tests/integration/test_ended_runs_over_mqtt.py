"""An engine's ended runs (``_ended_runs``) on a real broker: a served engine that idles after
a run answers its late decisions, then lets the run's command subscription go once its window
has passed, by a timer of its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import msgspec
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.interfaces.commands import decide_topic
from cascade.interfaces.serving import StartRequest, addressed_start_topic
from cascade.runtime import Engine, RunFinished, RunStarted, TaskHeld, task
from cascade.runtime import _ended_runs as ended_runs
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import BrokerEndpoint, Inbox

from .listening import Listening


def _answer_to(request_id: str) -> Callable[[Message], bool]:
    return lambda message: bool(message.payload.get("id") == request_id)


async def test_a_served_engine_that_idles_lets_an_ended_runs_commands_go_after_its_window(
    mqtt_broker: BrokerEndpoint,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A served run ends on a decision and the engine idles, no run after it: a late decision
    is still answered, and once the window (1 s here, 60 s by default) has passed, the run's
    command subscription is gone, by a timer of the engine's own, while it goes on serving."""
    monkeypatch.setattr(ended_runs, "ENDED_RUN_SECONDS", 1.0)

    @task(name="load", on_failure="hold")
    async def load() -> int:
        raise ConnectionError("the API is down")

    connector = Listening(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-idles"
    )
    engine = Engine(connector, heartbeat_interval=None, connect_wait=1.0)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    answers = Inbox()
    operator = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix,
                             source_id="it-operator", presence=False)  # fmt: skip
    await operator.connect(require=True)
    await operator.subscribe(f"{prefix}/reply/#", answers)
    served = asyncio.create_task(engine.serve({"loads": load}))
    try:
        start = StartRequest(id="s-1", workflow="loads")
        start_on = addressed_start_topic(
            engine.org_id, engine.project_id, "loads", "it-idles", prefix
        )
        await eventually(lambda: any("/start/" in s.topic_filter for s in connector.subscriptions))
        await operator.publish(start_on, msgspec.json.encode(start), qos=1)
        await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        topic = decide_topic(engine.org_id, engine.project_id, run_id, prefix)
        outcomes = []
        for n in range(2):  # the first ends the run, the second comes after it ended
            request = {"id": f"d-{n}", "run_id": run_id, "task": "load", "decision": "skip"}
            await operator.publish(topic, request, qos=1)
            answer = await answers.until(_answer_to(f"d-{n}"))
            outcomes.append(answer.payload["outcome"])
            if n == 0:
                await recorder.until(
                    lambda: any(isinstance(e, RunFinished) for e in recorder.events)
                )
        assert outcomes == ["applied", "already_decided"]
        assert len(connector.commands()) == 2  # kept for late decisions
        await eventually(lambda: not connector.commands())  # its window passed: let go
        assert connector.is_connected
        assert not served.done()
    finally:
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served
        await operator.disconnect()
