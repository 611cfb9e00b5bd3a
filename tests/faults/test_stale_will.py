"""Scenario 5: a stale will, published after the engine's new birth, must not mark it offline."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import DEFAULT_PREFIX, Message, status_topic
from cascade.reader import ReaderModel
from cascade.testkit import Inbox, OwnBroker, free_port

from .conftest import Figures, TcpProxy

KEEPALIVE = 2
# the CLI always reads the default prefix: the broker is this test's own, so that is safe
PREFIX = DEFAULT_PREFIX


def _status(
    kind: str, session: int | None = None, newer_than: int = 0
) -> Callable[[Message], bool]:
    def match(message: Message) -> bool:
        payload = message.payload
        if payload.get("status") != kind:
            return False
        got = int(payload.get("session", 0))
        return got == session if session is not None else got > newer_than

    return match


async def _cascade_status(broker: OwnBroker) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cascade.cli",
        "status",
        "--json",
        "--host",
        broker.host,
        "--port",
        str(broker.port),
        # RabbitMQ and NATS: the engine is listed by its answer to the roll call, which a
        # loaded CI machine once gave later than the default second
        "--rollcall-wait",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    result: dict[str, object] = json.loads(out)
    return result


async def test_stale_will_after_new_birth(own_broker: OwnBroker, figures: Figures) -> None:
    """Old connection frozen, engine reconnects, broker expires the old one: still online."""
    figures.scenario = "5 stale will"
    broker = own_broker
    proxy = TcpProxy(broker.port, free_port())
    await proxy.start()
    observer = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=PREFIX)
    await observer.connect(require=True)
    status = Inbox()
    await observer.subscribe(status_topic("stale", PREFIX), status)
    engine = MqttConnector(
        "127.0.0.1",
        proxy.port,
        topic_prefix=PREFIX,
        source_id="stale",
        keepalive=KEEPALIVE,
        backoff_initial=0.1,
        backoff_max=0.2,
    )
    loop = asyncio.get_running_loop()
    try:
        await engine.connect(require=True)
        first = (await status.until(_status("online"))).payload["session"]
        # broker → engine goes quiet: the engine misses its PINGRESP and reconnects; the broker,
        # still getting the old connection's pings until the engine drops it, notices nothing
        assert proxy.freeze(down_only=True) == 1
        frozen = loop.time()
        second = (await status.until(_status("online", newer_than=first), 20)).payload["session"]
        reborn = loop.time() - frozen
        will = await status.until(_status("offline"), 20)
        expired = loop.time() - frozen
        assert will.payload["session"] == first
        assert "reason" not in will.payload  # the broker's will, not a graceful offline
        # the engine sees its own stale will replace its birth, and announces itself again
        await status.until(_status("online", session=second), 10)
        view = ReaderModel(prefix=PREFIX)
        for message in status.all:
            view.apply(message)
        report = await _cascade_status(broker)
    finally:
        await engine.disconnect()
        await observer.disconnect()
        await proxy.close()

    seen = view.engines["stale"].status
    assert seen is not None
    assert (seen.status, seen.session) == ("online", second)
    engines = {e["source"]: e for e in report["engines"]}  # type: ignore[attr-defined]
    assert engines["stale"]["status"] == "online"
    assert engines["stale"]["session"] == second
    figures.seconds, figures.what = expired, "freeze → stale will"
    figures.notes.append(
        f"new birth {reborn:.2f} s after the freeze (session {second}), the old session's "
        f"will {expired:.2f} s after (session {first}): watch and status still say online"
    )
