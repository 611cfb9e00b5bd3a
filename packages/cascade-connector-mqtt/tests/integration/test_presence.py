"""Presence over a real broker: birth, will on SIGKILL, graceful offline, rising sessions."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import BrokerEndpoint, Inbox

CHILD = """
import asyncio, sys
from cascade.connectors.mqtt import MqttConnector

async def main():
    connector = MqttConnector(sys.argv[1], int(sys.argv[2]), topic_prefix=sys.argv[3],
                              source_id="child", keepalive=5)
    await connector.connect(require=True)
    print(connector.session, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_retained_birth_is_seen_by_another_client(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """A client subscribing after the birth gets the retained online, before subscribe returns."""
    async with MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="engine"
    ) as engine:
        assert engine.is_connected
        await engine.flush(5)
        inbox = Inbox()
        await observer.subscribe(f"{prefix}/status/engine", inbox)
        assert len(inbox.all) == 1
        birth = inbox.all[0]
        assert birth.retain
        assert birth.payload["status"] == "online"
        assert birth.payload["source"] == "engine"
        assert birth.payload["session"] == engine.session


async def test_graceful_disconnect_leaves_a_retained_offline_with_reason(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """disconnect() publishes offline with reason shutdown; it stays retained for late readers."""
    engine = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="e")
    await engine.connect(require=True)
    inbox = Inbox()
    await observer.subscribe(f"{prefix}/status/e", inbox)
    assert (await inbox.next()).payload["status"] == "online"
    await engine.disconnect()
    offline = await inbox.next()
    assert offline.payload["status"] == "offline"
    assert offline.payload["reason"] == "shutdown"
    assert offline.payload["session"] == engine.session
    late = Inbox()
    await observer.subscribe(f"{prefix}/status/e", late)
    assert [m.payload.get("reason") for m in late.all] == ["shutdown"]


async def test_sigkilled_process_gets_its_retained_will(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """A child holding a connector is killed with SIGKILL: the broker publishes its will."""
    inbox = Inbox()
    await observer.subscribe(f"{prefix}/status/child", inbox)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        mqtt_broker.host,
        str(mqtt_broker.port),
        prefix,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        session = int(await asyncio.wait_for(child.stdout.readline(), 15))
        online = await inbox.next()
        assert online.payload["status"] == "online"
        assert online.payload["session"] == session
        os.kill(child.pid, signal.SIGKILL)
        will = await inbox.next(timeout=15)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert will.payload["status"] == "offline"
    assert will.payload["session"] == session
    assert "reason" not in will.payload
    late = Inbox()
    await observer.subscribe(f"{prefix}/status/child", late)
    assert late.all[0].retain
    assert late.all[0].payload["status"] == "offline"


async def test_a_newer_connection_of_a_source_has_a_higher_session(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """Two connectors of the same source one after the other: the second session is higher."""
    sessions = []
    for _ in range(2):
        async with MqttConnector(
            mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="same"
        ) as connector:
            sessions.append(connector.session)
    assert sessions[1] > sessions[0] > 0


async def test_a_stale_will_over_the_birth_is_answered_with_a_new_birth(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """An offline of an older session on a live source's topic: it announces itself again."""
    async with MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="alive"
    ) as engine:
        inbox = Inbox()
        await observer.subscribe(f"{prefix}/status/alive", inbox)
        assert (await inbox.next()).payload["status"] == "online"
        stale = {"status": "offline", "source": "alive", "session": engine.session - 1}
        await observer.publish(f"{prefix}/status/alive", stale, qos=1, retain=True)
        assert (await inbox.until(lambda m: m.payload["status"] == "offline")).payload == stale
        again = await inbox.until(lambda m: m.payload["status"] == "online")
        assert again.payload["session"] == engine.session
        late = Inbox()
        await observer.subscribe(f"{prefix}/status/alive", late)
        assert [m.payload["status"] for m in late.all] == ["online"]
