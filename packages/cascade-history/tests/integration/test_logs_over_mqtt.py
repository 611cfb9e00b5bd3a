"""The recorder on a real mosquitto stores the task log batches an engine publishes, into SQLite
and into the private PostgreSQL: each line once, a copy of a batch a duplicate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.interfaces import logs_topic
from cascade.testkit import MosquittoBroker
from cascade.testkit import family_mosquitto_broker as family_mosquitto_broker  # fixture

from ..logs import batch, line

RUN = "run-logs-mqtt"
BATCHES = 20
LINES = 50


async def _record_published(broker: MosquittoBroker, history: History) -> Recorder:
    """Publish BATCHES batches of LINES lines, the first twice, while recording, until the
    last is stored (QoS 1 on one connection: in order, so the copy came before)."""
    async with MqttConnector(broker.host, broker.port, source_id="it-recorder") as connector:
        recorder = Recorder(connector, history)
        await recorder.start()
        async with MqttConnector(broker.host, broker.port, source_id="engine-1") as engine:
            batches = [
                batch(RUN, seq, [line(f"t{seq % 3}", seq * LINES + n) for n in range(LINES)])
                for seq in range(1, BATCHES + 1)
            ]
            topic = logs_topic("local", "default", RUN, source="engine-1")
            for logs in [batches[0], *batches]:
                await engine.publish(topic, logs, qos=1)
        for _ in range(1000):
            await recorder.flush(timeout=5)
            last = await asyncio.to_thread(history.log_lines, RUN, after=0, limit=None)
            if last and last[-1].n == (BATCHES + 1) * LINES - 1:
                break
            await asyncio.sleep(0.01)
        await recorder.stop()
    return recorder


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_published_batches_are_stored(
    mosquitto_broker: MosquittoBroker, database_url: str, tmp_path: Path, database: str
) -> None:
    url = database_url if database == "postgresql" else f"sqlite:///{tmp_path / 'h.sqlite3'}"
    with History(url, mode="write") as history:
        recorder = asyncio.run(_record_published(mosquitto_broker, history))
        assert (recorder.stats.rejected, recorder.stats.refused) == (0, 0)
        assert recorder.stats.duplicates >= 1
        lines = history.log_lines(RUN, limit=None)
        assert [got.n for got in lines] == list(range(LINES, (BATCHES + 1) * LINES))
        counts = history.log_counts(RUN)
        assert sum(count.lines for count in counts.values()) == BATCHES * LINES
        assert history.runs_logging("T1 LINE") == [RUN]
