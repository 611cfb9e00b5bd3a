"""Scenario 4: an engine killed (SIGKILL) or frozen (SIGSTOP) is announced offline by its will."""

from __future__ import annotations

import asyncio
import os
import signal

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, status_topic
from cascade.testkit import Inbox, OwnBroker

from .conftest import EngineProcess, Figures, engine_args

KEEPALIVE = 2
# mosquitto 2.0.11 sweeps keepalives only every few seconds: measured with a bare paho
# client, a frozen client's will comes 5.1 s after the freeze at keepalive 2 and 11 s at 4.
# Its clock counts whole seconds: it sweeps once 5 of them have passed since the last sweep
# (up to 6 s apart), and a client expires once more than 1.5 x keepalive whole seconds lie
# between its last packet's second and now (up to 1.5 x keepalive + 1 s after the packet).
# A CI run saw the will 8.58 s after the freeze, past a bound that left both out.
SWEEP = 6.0
WHOLE_SECOND = 1.0


def _offline(message: Message) -> bool:
    return message.payload.get("status") == "offline"


async def _engine_online(
    broker: OwnBroker, prefix: str, source: str, children: list[EngineProcess]
) -> tuple[EngineProcess, Inbox, MqttConnector, int]:
    observer = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    inbox = Inbox()
    await observer.subscribe(status_topic(source, prefix), inbox)
    child = await EngineProcess.start(
        *engine_args(broker, prefix, source, tasks=1, sleep=600, keepalive=KEEPALIVE)
    )
    children.append(child)
    running = await child.expect("running")
    online = await inbox.until(lambda m: m.payload.get("status") == "online")
    assert online.payload["session"] == running["session"]
    return child, inbox, observer, running["session"]


async def test_sigkill_offline_within_a_second(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
) -> None:
    """SIGKILL: the broker's retained offline (the will) reaches a subscriber within 1 s."""
    figures.scenario = "4 engine SIGKILL"
    child, inbox, observer, session = await _engine_online(
        own_broker, prefix, "killed", engine_processes
    )
    try:
        loop = asyncio.get_running_loop()
        killed = loop.time()
        os.kill(child.process.pid, signal.SIGKILL)
        will = await inbox.until(_offline, timeout=5)
        elapsed = loop.time() - killed
        late = Inbox()
        await observer.subscribe(status_topic("killed", prefix), late)
    finally:
        await observer.disconnect()
    figures.seconds, figures.what = elapsed, "kill → offline"
    assert will.payload["session"] == session
    assert "reason" not in will.payload  # the will, not a graceful offline
    assert elapsed < 1.0
    assert [m.payload["status"] for m in late.all] == ["offline"]
    assert late.all[0].retain


async def test_sigstop_offline_after_one_and_a_half_keepalives(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
) -> None:
    """SIGSTOP: the will arrives once the broker's keepalive check (1.5 x 2 s) expires it."""
    figures.scenario = "4 engine SIGSTOP"
    child, inbox, observer, session = await _engine_online(
        own_broker, prefix, "frozen", engine_processes
    )
    try:
        loop = asyncio.get_running_loop()
        frozen = loop.time()
        os.kill(child.process.pid, signal.SIGSTOP)
        try:
            will = await inbox.until(_offline, timeout=3 * KEEPALIVE + 2 * SWEEP)
            elapsed = loop.time() - frozen
        finally:
            os.kill(child.process.pid, signal.SIGKILL)
    finally:
        await observer.disconnect()
    figures.seconds, figures.what = elapsed, "freeze → offline"
    figures.notes.append(f"keepalive {KEEPALIVE} s: offline after {elapsed:.2f} s")
    assert will.payload["session"] == session
    # not before the engine's last ping (at most one keepalive before the freeze) expires;
    # no later than 1.5 x keepalive (in the broker's whole seconds) plus one sweep of
    # mosquitto's keepalive check
    assert 0.5 * KEEPALIVE <= elapsed <= 1.5 * KEEPALIVE + WHOLE_SECOND + SWEEP + 0.5
