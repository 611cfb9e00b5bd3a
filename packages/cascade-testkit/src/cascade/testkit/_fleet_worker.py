"""One process of a simulated fleet: its share of the engines over one MQTT connection.

``python -m cascade.testkit._fleet_worker SETTINGS INDEX``, started by
:class:`~cascade.testkit.FleetSimulator`: SETTINGS is a :class:`FleetSettings` as JSON.
Commands come one a line on stdin, answers go one JSON line (``[kind, counts]``) on stdout:
the worker connects, publishes its engines' retained ``online`` statuses and says ``ready``;
on ``go`` it publishes their runs at its share of the fleet's rate, paced by a token bucket,
their heartbeats and their summaries (``_fleet_share``); it answers ``report`` with what it
has published; on ``stop`` (or its stdin's end: the parent is gone) it ends every run as an
engine stopped by Ctrl-C does, publishes each engine's last summary and every engine's
``offline``, waits for the broker to take them and says ``stopped`` with its final counts
(each engine's events by kind among them). A failure is said as ``["error", traceback]``.

The engines publish through Cascade's own connector (``MqttConnector``, without presence of
its own), as real engines do: in order, QoS 0 and 1 on one connection. Through paho's client
the two processes took 82-99 % of a core at 20,000 events a second beside the dashboard and
`status` (and fell 3-5 % short), CPU those readers went without; through the connector 50-71 %.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import sys
import threading
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from typing import Any, TextIO

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import FlushTimeoutError

from ._fleet_engines import FleetSettings, Outgoing, SimulatedEngine
from ._fleet_share import EngineShare

__all__ = ["TICK", "Commands", "serve"]

TICK = 0.005
"""Seconds between two rounds of the pacing loop."""
_BURST = 0.1  # seconds of the rate the token bucket holds: what a late round may catch up
_INFLIGHT = 1_000  # QoS 1 messages unacknowledged at once (the births of thousands of engines)
_BUFFER = 200_000  # messages the connector holds for the broker (every birth at once, a burst)
_CONNECT_TIMEOUT = 30.0
_DRAIN_TIMEOUT = 60.0


class Commands:
    """The parent's commands (``go``, ``report``, ``stop``), read from ``stdin`` by a thread;
    its end reads as ``stop``. Answers go to ``stdout``, one JSON line each."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stdout = stdout
        threading.Thread(target=self._read, args=(stdin,), daemon=True).start()

    def _read(self, stdin: TextIO) -> None:
        for line in stdin:
            self._queue.put(line.strip())
        self._queue.put("stop")

    def poll(self) -> bool:
        """Whether a command waits."""
        return not self._queue.empty()

    def recv(self) -> str:
        """The next command (waits for it)."""
        return self._queue.get()

    def send(self, kind: str, payload: object) -> None:
        """Say ``[kind, payload]`` to the parent."""
        self._stdout.write(json.dumps([kind, payload]) + "\n")
        self._stdout.flush()


def serve(settings: FleetSettings, index: int, conn: Commands) -> None:
    """The worker's main: engines ``index``, ``index + processes``, ... of the fleet."""
    try:
        asyncio.run(_Worker(settings, index, conn).run())
    except BaseException:
        conn.send("error", traceback.format_exc())
        raise


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat()


class _Worker:
    def __init__(self, settings: FleetSettings, index: int, conn: Commands) -> None:
        self.settings = settings
        self.conn = conn
        seed = None if settings.seed is None else settings.seed * 1_000 + index
        self.rng = random.Random(seed)
        self.tally: Counter[str] = Counter()
        first_session = time.time_ns() // 1_000_000  # sessions: epoch ms, one apart per engine
        self.engines = [
            SimulatedEngine(settings, n, first_session + n, self.rng, self.tally)
            for n in range(index, settings.engines, settings.processes)
        ]
        self.share: EngineShare | None = None  # once the runs go
        self.statuses = 0
        self.shortfall = 0.0
        self.began: float | None = None
        self.connector = MqttConnector(
            hostname=settings.host,
            port=settings.port,
            client_id=f"{settings.name}-p{index}",
            topic_prefix=settings.prefix,
            presence=False,  # the engines' statuses are the presence here
            buffer_size=_BUFFER,
            max_in_flight=_INFLIGHT,
            connect_timeout=_CONNECT_TIMEOUT,
        )

    async def run(self) -> None:
        await self.connector.connect(require=True)
        try:
            ts = _iso(time.time())
            for engine in self.engines:
                self._send(engine.status(True, ts))
            await self._confirm()
            self.statuses += len(self.engines)
            self.conn.send("ready", self.report())
            if await self._wait_for_go():
                await self._pace()
            await self._finish()
        finally:
            await self.connector.disconnect()

    async def _wait_for_go(self) -> bool:
        while True:
            command = await asyncio.to_thread(self.conn.recv)
            if command == "report":
                self.conn.send("report", self.report())
            else:
                return bool(command == "go")

    async def _pace(self) -> None:
        """Publish events at this worker's share of the rate until told to stop.

        A token bucket: tokens come at the rate and each event takes one. A round that
        comes late (a busy machine) catches up at most ``_BURST`` seconds' worth: the rest is
        :attr:`shortfall`, what this worker could not publish.
        """
        settings, conn = self.settings, self.conn
        per_second = settings.rate / settings.processes
        capacity = max(1.0, per_second * _BURST)
        self.began = last = time.monotonic()
        share = self.share = EngineShare(
            self.engines,
            self.rng,
            self._send,
            settings.heartbeat_interval,
            last,
            settings.beats_within,
        )
        tokens = 0.0
        while True:
            if conn.poll():
                command = conn.recv()
                if command == "stop":
                    return
                conn.send("report", self.report())
            now = time.monotonic()
            tokens += (now - last) * per_second
            last = now
            if tokens > capacity:
                self.shortfall += tokens - capacity
                tokens = capacity
            due = int(tokens)
            wall = time.time()
            share.round(now, wall, _iso(wall), due)
            tokens -= due
            # the connector sends in this pause: always give it a turn of the loop
            await asyncio.sleep(max(0.0, TICK - (time.monotonic() - now)))

    async def _finish(self) -> None:
        wall = time.time()
        now, ts = time.monotonic(), _iso(wall)
        if self.share is not None:  # else stopped before its runs began
            self.share.stop(now, ts)
        for engine in self.engines:
            self._send(engine.status(False, ts))
        await self._confirm()
        self.statuses += len(self.engines)
        self.conn.send("stopped", {**self.report(), "engines": self.engine_kinds()})

    def _send(self, message: Outgoing) -> bool:
        topic, payload, qos, retain = message
        self.connector.publisher(topic, qos, retain)(payload)
        return True  # what the connector could not send it counts (``unsent``)

    async def _confirm(self) -> None:
        """Wait until the broker has taken everything published so far (PUBACKs for QoS 1)."""
        try:
            await self.connector.flush(_DRAIN_TIMEOUT)
        except FlushTimeoutError:
            raise TimeoutError(
                f"the broker did not acknowledge every status in {_DRAIN_TIMEOUT} s"
            ) from None

    def report(self) -> dict[str, Any]:
        """What this worker has published so far."""
        share, stats = self.share, self.connector.stats
        return {
            "events": sum(self.tally.values()),
            "heartbeats": 0 if share is None else share.heartbeats,
            "summaries": 0 if share is None else share.summaries,
            "statuses": self.statuses,
            "unsent": stats.dropped,
            "disconnects": stats.reconnects,
            "shortfall": int(self.shortfall),
            "seconds": 0.0 if self.began is None else time.monotonic() - self.began,
            "kinds": dict(self.tally),
            "running_runs": sum(1 for engine in self.engines if engine.run_id is not None),
        }

    def engine_kinds(self) -> dict[str, dict[str, int]]:
        """Each engine's events by kind (:attr:`SimulatedEngine.kinds`), by source."""
        return {engine.source: dict(engine.kinds) for engine in self.engines}


if __name__ == "__main__":
    serve(
        FleetSettings(**json.loads(sys.argv[1])), int(sys.argv[2]), Commands(sys.stdin, sys.stdout)
    )
