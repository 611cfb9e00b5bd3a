"""Scenario 1: no broker at the start of a run; it appears mid-run and the telemetry follows."""

from __future__ import annotations

import asyncio

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, status_topic
from cascade.runtime import Engine, Event, LazyResult, RunFinished, TaskBlocked, TaskCompleted
from cascade.testkit import Inbox, OwnBroker, broker_family, free_port

from .conftest import Figures, MeteredConnector, TcpProxy, as_connector
from .workload import sleepy_fanout

TASKS = 2000
CONCURRENCY = 100
SLEEP = 0.1  # 20 waves: about 2 s of run
CONNECT_TIMEOUT = 1.0


def graph() -> LazyResult[int]:
    return sleepy_fanout(TASKS, SLEEP)


async def _timed_run(engine: Engine, midway: asyncio.Event | None = None) -> tuple[int, float, int]:
    """The run's result, its time from start to RunFinished (telemetry flush excluded), and
    how many BLOCKED events it had (tasks held while the constraints were being confirmed)."""
    loop = asyncio.get_running_loop()
    finished: list[float] = []
    completed = blocked = 0

    def watch(event: Event) -> None:
        nonlocal completed, blocked
        if isinstance(event, TaskBlocked):
            blocked += 1
        elif isinstance(event, TaskCompleted):
            completed += 1
            if midway is not None and completed == TASKS // 4:
                midway.set()
        elif isinstance(event, RunFinished):
            finished.append(loop.time())

    unsubscribe = engine.events.subscribe(watch)
    started = loop.time()
    try:
        result = await engine.run(graph())
    finally:
        unsubscribe()
    return result, finished[0] - started, blocked


def _stopped(message: Message) -> bool:
    return bool(message.payload.get("body", {}).get("event") == "ENGINE_STOPPED")


async def test_broker_absent_at_start(own_broker: OwnBroker, prefix: str, figures: Figures) -> None:
    """A 2,000-task run without a broker: late by at most the connect timeout, then all arrives."""
    figures.scenario = "1 broker absent at start"
    expected = sum(range(TASKS))
    baseline_result, baseline, _ = await _timed_run(Engine(None, max_concurrency=CONCURRENCY))
    assert baseline_result == expected

    # the engine talks to the broker through a proxy that does not listen yet: no broker there
    proxy = TcpProxy(own_broker.port, free_port())
    observer = MqttConnector(own_broker.host, own_broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    status, events = Inbox(), Inbox()
    await observer.subscribe(status_topic("absent", prefix), status)
    await observer.subscribe(f"{prefix}/telemetry/#", events)
    connector = MeteredConnector(
        MqttConnector(
            "127.0.0.1",
            proxy.port,
            topic_prefix=prefix,
            source_id="absent",
            connect_timeout=CONNECT_TIMEOUT,
            backoff_initial=0.2,
            backoff_max=0.5,
        )
    )
    engine = Engine(as_connector(connector), max_concurrency=CONCURRENCY, heartbeat_interval=None)
    midway = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def broker_appears() -> float:
        await midway.wait()
        await proxy.start()
        appeared = loop.time()
        online = await status.until(lambda m: m.payload.get("status") == "online", timeout=10)
        assert online.payload["source"] == "absent"
        return loop.time() - appeared

    try:
        recovery = asyncio.create_task(broker_appears())
        result, seconds, blocked = await _timed_run(engine, midway)
        recovered = await recovery
        await events.until(_stopped, timeout=10)
    finally:
        await proxy.close()
        await observer.disconnect()

    assert result == expected
    delivered = len(events.all)
    dropped = connector.stats.dropped + engine.stats.telemetry_dropped
    figures.emitted, figures.delivered, figures.dropped = connector.emitted, delivered, dropped
    figures.seconds, figures.what = recovered, "broker up → online seen"
    figures.notes.append(
        f"run {seconds:.2f} s against {baseline:.2f} s without any connector "
        f"(connect timeout {CONNECT_TIMEOUT:g} s)"
    )
    assert seconds <= baseline + CONNECT_TIMEOUT + 0.5
    # RUNNING and COMPLETED per task, the lifecycle, and BLOCKED for the tasks held while the
    # connector, connected mid-run, confirmed the broker's (retained) constraints
    assert connector.emitted == 2 * (TASKS + 1) + 2 + blocked
    assert blocked <= CONCURRENCY
    assert delivered + dropped == connector.emitted
    assert dropped == 0
    started = {  # named after its target's task; above the graph's bound: its size instead
        "type": "LifecycleEvent",
        "event": "ENGINE_STARTED",
        "tasks": TASKS + 1,
        "name": "_total",
        "graph_nodes": TASKS + 1,
    }
    bodies = [message.payload["body"] for message in events.all]
    if broker_family() == "rabbitmq":  # QOS_ORDER_NOT_KEPT: the QoS 1 start may come later
        assert started in bodies
    else:
        assert bodies[0] == started
