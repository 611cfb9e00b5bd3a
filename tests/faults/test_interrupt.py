"""Scenario 9: SIGINT during a run in a child process: a clean, announced, bounded stop."""

from __future__ import annotations

import asyncio
import signal

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, status_topic
from cascade.testkit import Inbox, OwnBroker

from .conftest import EngineProcess, Figures, engine_args

FLUSH_TIMEOUT = 3.0
CONCURRENCY = 4


def _stopped(message: Message) -> bool:
    body = message.payload.get("body", {})
    return bool(body.get("event") == "ENGINE_STOPPED")


async def test_sigint_cancels_the_run_and_says_so(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
) -> None:
    """Ctrl-C: no new task, ENGINE_STOPPED (cancelled), graceful offline, exit within flush time."""
    figures.scenario = "9 SIGINT mid-run"
    broker = own_broker
    observer = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    try:
        status, events = Inbox(), Inbox()
        await observer.subscribe(status_topic("sigint", prefix), status)
        await observer.subscribe(f"{prefix}/telemetry/#", events)
        child = await EngineProcess.start(
            *engine_args(
                broker,
                prefix,
                "sigint",
                tasks=40,
                sleep=0.5,
                concurrency=CONCURRENCY,
                flush_timeout=FLUSH_TIMEOUT,
            )
        )
        engine_processes.append(child)
        # two waves in: some tasks finished, CONCURRENCY running
        await child.expect("running")
        for _ in range(2 * CONCURRENCY):
            await child.expect("running")
        loop = asyncio.get_running_loop()
        interrupted = loop.time()
        child.process.send_signal(signal.SIGINT)
        code = await child.wait(timeout=FLUSH_TIMEOUT + 5)
        exit_seconds = loop.time() - interrupted
        stopped = await events.until(_stopped, timeout=5)
        if len(events.all) < stopped.payload["seq"]:  # RabbitMQ: QoS 0 states after the end
            await events.until(lambda _: len(events.all) >= stopped.payload["seq"], timeout=5)
        offline = await status.until(lambda m: m.payload.get("status") == "offline", timeout=5)
    finally:
        await observer.disconnect()

    started = [line for line in child.lines if line["event"] == "running"]
    assert code == 130
    assert child.lines[-1]["event"] == "interrupted"
    body = stopped.payload["body"]
    assert (body["status"], body["error"]) == ("Failed", "CancelledError: the run was cancelled")
    assert offline.payload.get("reason") == "shutdown"  # graceful, not the will
    assert exit_seconds < FLUSH_TIMEOUT
    bodies = [m.payload["body"] for m in events.all if "state" in m.payload["body"]]
    states = [body["state"] for body in bodies]
    cancelled = [body for body in bodies if body.get("cancelled") is True]
    # every event of the run was numbered before ENGINE_STOPPED (RabbitMQ may deliver the
    # QoS 1 end before the QoS 0 states before it: the numbers, not the arrival, say so), and
    # no task started after the signal: the tasks that ran are those that completed plus at
    # most one wave cut short; every task ended, the others CANCELLED (FAILED + cancelled)
    numbers = sorted(m.payload["seq"] for m in events.all)
    assert numbers == list(range(1, len(events.all) + 1))
    assert stopped.payload["seq"] == len(events.all)
    assert states.count("RUNNING") == len(started)
    assert len(started) - states.count("COMPLETED") <= CONCURRENCY
    assert len(started) < 40
    assert states.count("COMPLETED") + len(cancelled) == 41  # the 40 steps and their total
    assert {body["error"] for body in cancelled} == {"CancelledError: the run was cancelled"}
    # the engine emits ENGINE_STARTED, RUNNING per task started, a terminal state per task,
    # ENGINE_STOPPED
    emitted = 2 + len(started) + 41
    assert len(events.all) == emitted
    figures.emitted, figures.delivered, figures.dropped = emitted, len(events.all), 0
    figures.seconds, figures.what = exit_seconds, "SIGINT → exit"
    figures.notes.append(
        f"{len(started)} of 40 tasks started, {states.count('COMPLETED')} completed, "
        f"{len(cancelled)} cancelled at once (the engine's grace period is zero), each ended"
    )
