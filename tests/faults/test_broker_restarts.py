"""Scenario 2: the broker restarted three times during a 5,000-task run: nothing lost silently."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.runtime import Engine, Event, LazyResult, TaskBlocked, TaskCompleted
from cascade.testkit import (
    MOSQUITTO_ONLY,
    MosquittoBroker,
    mosquitto_path,
    skip_on_family,
)

from .conftest import Figures, MeteredConnector, as_connector
from .workload import sleepy_fanout

TASKS = 5000
CONCURRENCY = 25
SLEEP = 0.02  # 200 waves: several seconds of run
RESTART_AT = (0.2, 0.45, 0.7)  # fractions of the tasks completed

# it configures a mosquitto of its own (persistence, or TLS, passwords and ACL): the mosquitto
# family runs it
pytestmark = [
    skip_on_family(family, MOSQUITTO_ONLY.format(family=family)) for family in ("rabbitmq", "nats")
]


@pytest.fixture
def persistent_broker() -> MosquittoBroker:
    """A private mosquitto with persistence on, so queued messages survive a restart.

    QoS 0 messages go to the counting subscriber at its subscription's QoS 1
    (``upgrade_outgoing_qos``): what the engine delivered is not lost on the
    subscriber's side of a restart, so every loss counted is the engine's.
    """
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    return MosquittoBroker(persistence=True, extra_config="upgrade_outgoing_qos true")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("qos", [1, 0], ids=["qos1", "qos0"])
async def test_broker_restarted_three_times(
    persistent_broker: MosquittoBroker, prefix: str, figures: Figures, qos: int
) -> None:
    """delivered + dropped = emitted across three restarts, at QoS 1 and at the default QoS 0."""
    figures.scenario = "2 broker restarted x3" + (" (QoS 0, default)" if qos == 0 else "")
    broker = persistent_broker
    broker.start()
    unique: set[bytes] = set()
    received = 0
    everything = asyncio.Event()
    goal: int | None = None  # what was emitted, known once the run is over

    def count(message: Message) -> None:
        nonlocal received
        received += 1
        unique.add(message.raw)
        if goal is not None and len(unique) >= goal:
            everything.set()

    # the counting subscriber: a persistent QoS 1 session, so its own absence loses nothing
    subscriber = MqttConnector(
        broker.host,
        broker.port,
        presence=False,
        topic_prefix=prefix,
        client_id=f"counter-{uuid.uuid4().hex[:8]}",
        clean_session=False,
    )
    # the engine: every telemetry message at QoS 1, or each at its default QoS; the default buffer
    connector = MeteredConnector(
        MqttConnector(broker.host, broker.port, topic_prefix=prefix, source_id="restarts"),
        min_qos=qos,
    )
    engine = Engine(as_connector(connector), max_concurrency=CONCURRENCY, heartbeat_interval=None)
    triggers = [asyncio.Event() for _ in RESTART_AT]
    completed = blocked = 0

    def watch(event: Event) -> None:
        nonlocal completed, blocked
        if isinstance(event, TaskBlocked):
            blocked += 1  # held while a reconnection confirmed the constraints
        elif isinstance(event, TaskCompleted):
            completed += 1
            for fraction, trigger in zip(RESTART_AT, triggers, strict=True):
                if completed == int(TASKS * fraction):
                    trigger.set()

    engine.events.subscribe(watch)
    loop = asyncio.get_running_loop()

    async def restarts() -> list[float]:
        """Restart the broker at each trigger; how long the engine took to be back each time."""
        recoveries = []
        for trigger in triggers:
            await trigger.wait()
            before = connector.stats.reconnects
            await asyncio.to_thread(broker.restart)
            up = loop.time()
            deadline = up + 15
            while connector.stats.reconnects == before:  # polling: a counter, nothing to await
                assert loop.time() < deadline, "the engine did not reconnect"
                await asyncio.sleep(0.01)
            recoveries.append(loop.time() - up)
            restarted.append(up)
        return recoveries

    restarted: list[float] = []

    try:
        await subscriber.connect(require=True)
        await subscriber.subscribe(f"{prefix}/telemetry/#", count)
        await connector.connect(require=True)
        restarting = asyncio.create_task(restarts())
        try:
            target: LazyResult[int] = sleepy_fanout(TASKS, SLEEP)
            result = await engine.run(target)
            finished = loop.time()
            recoveries = await asyncio.wait_for(restarting, 30)
        finally:
            restarting.cancel()
        await connector.flush(30)
        emitted = connector.emitted
        dropped = connector.stats.dropped + engine.stats.telemetry_dropped
        published, resent = connector.stats.published, connector.stats.resent
        goal = emitted - dropped  # what was not counted must arrive
        if len(unique) >= goal:
            everything.set()
        await connector.disconnect()
        with contextlib.suppress(asyncio.TimeoutError):  # the assertions below say what is missing
            await asyncio.wait_for(everything.wait(), 30)
    finally:
        await subscriber.disconnect()
        broker.close()

    delivered = len(unique)
    figures.emitted, figures.delivered, figures.dropped = emitted, delivered, dropped
    figures.seconds, figures.what = max(recoveries), "restart → reconnected (max)"
    figures.notes.append(
        f"reconnected after {', '.join(f'{r:.2f}' for r in recoveries)} s; "
        f"{resent} messages resent; {received - delivered} duplicates received and not counted"
    )
    assert result == sum(range(TASKS))
    assert emitted == 2 * (TASKS + 1) + 2 + blocked  # RUNNING, COMPLETED, lifecycle, BLOCKED
    assert blocked <= 3 * CONCURRENCY
    assert connector.stats.reconnects == 3
    assert restarted[-1] < finished  # all three restarts were mid-run
    assert delivered + dropped == emitted
    # published: confirmed by the broker, the engine's summaries too
    assert published + connector.stats.dropped == emitted + connector.others
    assert dropped == 0
