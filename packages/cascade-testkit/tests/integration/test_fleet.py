"""A small simulated fleet, read through a private mosquitto as Cascade's readers read it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, status_filter, telemetry_filter
from cascade.interfaces.summaries import EngineSummary, decode_summary, summary_filter
from cascade.reader import ReaderModel
from cascade.testkit import FleetSettings, FleetSimulator, MosquittoBroker, final_tallies

pytestmark = pytest.mark.integration

ENGINES = 20
STATES = {"RUNNING", "BLOCKED", "COMPLETED", "FAILED"}


class Reader:
    """A ReaderModel fed from a subscription, with every numbered event's seq kept per run."""

    def __init__(self, prefix: str) -> None:
        self.model = ReaderModel(prefix=prefix, keep_runs=None, keep_for=None)
        self.seqs: dict[str, list[int]] = {}
        self.last_event: dict[str, str] = {}
        self.heartbeats = 0
        self.shown: set[str] = set()  # task states some run showed at some moment
        self.summaries: dict[str, EngineSummary] = {}  # each engine's latest
        self._changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self._changed.set()
        if "/summary/" in message.topic:
            summary = decode_summary(message.raw)
            self.summaries[summary.source] = summary
            return
        self.model.apply(message)
        payload = message.payload
        if message.topic.endswith("/events"):
            self.seqs.setdefault(payload["run_id"], []).append(payload["seq"])
            self.last_event[payload["run_id"]] = payload["body"].get("event", "")
        elif message.topic.endswith("/heartbeat"):
            self.heartbeats += 1
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Return once ``condition()`` holds, checked after each message; TimeoutError after
        ``timeout`` seconds."""
        async with bounded(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def states_shown(self) -> set[str]:
        for run in self.model.runs.values():
            self.shown.update(state for state, count in run.counts().items() if count)
        return self.shown

    def engines(self, status: str) -> set[str]:
        return {
            source
            for source, engine in self.model.engines.items()
            if engine.status is not None and engine.status.status == status
        }

    def events(self) -> int:
        return sum(len(seqs) for seqs in self.seqs.values())


async def test_a_small_fleet_is_seen_whole(mosquitto_broker: MosquittoBroker) -> None:
    """20 engines at 500 events/s: a reader sees every engine online, runs with tasks in each
    state, both outcomes, heartbeats, every event of every run numbered 1, 2, 3... without a
    hole, and at the stop every run ended, every engine offline and its retained summary
    counting its runs and tasks as its events did."""
    broker = mosquitto_broker
    prefix = f"fleet-test-{uuid.uuid4().hex[:8]}"
    settings = FleetSettings(
        broker.host, broker.port, engines=ENGINES, rate=500, processes=2, tasks_per_run=6,
        fail_ratio=0.2, block_ratio=0.2, heartbeat_interval=1.0, prefix=prefix, seed=34,
    )  # fmt: skip
    sources = set(settings.sources())
    reader = Reader(prefix)
    async with MqttConnector(broker.host, broker.port, topic_prefix=prefix, presence=False) as mqtt:
        await mqtt.subscribe(telemetry_filter(prefix=prefix), reader)
        await mqtt.subscribe(status_filter(prefix), reader)
        await mqtt.subscribe(summary_filter(prefix), reader)
        fleet = FleetSimulator(settings)
        fleet.start()
        try:
            await asyncio.to_thread(fleet.wait_ready)
            await reader.until(lambda: reader.engines("online") == sources)
            fleet.go()

            def seen_enough() -> bool:
                ended = {run.source for run in reader.model.runs.values() if run.finished}
                outcomes = {run.status for run in reader.model.runs.values() if run.finished}
                return (
                    reader.states_shown() >= STATES
                    and ended == sources
                    and outcomes == {"Succeeded", "Failed"}
                    and reader.heartbeats >= ENGINES
                )

            await reader.until(seen_enough)
            published = fleet.counts()
            assert set(published.kinds) >= STATES
        finally:
            final = await asyncio.to_thread(fleet.stop)
        # each worker says its engines offline after its last event, on the same connection
        await reader.until(lambda: reader.engines("offline") == sources)

        def summaries_agree() -> bool:
            latest = reader.summaries
            return latest.keys() == sources and all(
                (latest[s].runs, latest[s].tasks) == final_tallies(final.engines[s])
                for s in sources
            )

        await reader.until(summaries_agree, timeout=10.0)
    model = reader.model
    assert reader.events() == final.events
    assert final.events == sum(final.kinds.values())
    assert final.unsent == 0
    assert all(run.finished for run in model.runs.values())
    assert len(model.runs) == final.runs_started
    for run_id, seqs in reader.seqs.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), run_id
        assert reader.last_event[run_id] == "ENGINE_STOPPED", run_id
    assert not any(gaps.missed for gaps in model.gaps.by_source.values())
    assert (model.rejected, model.oversized, dict(model.refusals.by_source)) == (0, 0, {})
