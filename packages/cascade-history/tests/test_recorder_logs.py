"""The recorder takes the tasks' logs from the broker: stored through the same batched writes
as telemetry, a copy once, what is malformed or too large rejected, another source's batch
refused, shared with the group's recorders, pruned by ``keep_logs``."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, telemetry
from cascade.history import History, Recorder
from cascade.interfaces import LifecycleEvent, Payload
from cascade.interfaces.logs import LogBatch, logs_topic
from cascade.reader import REASON_FOREIGN

from .logs import batch, line

MAX_LOG_PAYLOAD_BYTES = 256 * 1024  # the protocol's bound, as docs/protocol.md states it

RUN = "run-logs-1"
_STARTED = LifecycleEvent(event="ENGINE_STARTED")


async def _publish(
    broker: InMemoryBroker, recorder: Recorder, *messages: tuple[str, Payload]
) -> None:
    """Publish each (topic, payload) and wait until the recorder has written them."""
    async with InMemoryConnector(broker, presence=False) as publisher:
        for topic, payload in messages:
            await publisher.publish(topic, payload)
    await broker.idle()
    await recorder.flush(timeout=5)


def _on_topic(logs: LogBatch, *, sourced: bool = False) -> tuple[str, LogBatch]:
    source = logs.source if sourced else None
    return logs_topic("local", "default", logs.run_id, source=source), logs


async def test_published_batches_are_stored_once(
    broker: InMemoryBroker, recorder: Recorder, history: History
) -> None:
    first = batch(RUN, 1, [line("t1", 1), line("t1", 2)])
    await _publish(broker, recorder, _on_topic(first), _on_topic(first),
                   _on_topic(batch(RUN, 2, [line("t1", 3)]), sourced=True))  # fmt: skip
    stats = recorder.stats
    assert (stats.received, stats.stored, stats.duplicates) == (3, 2, 1)
    assert [got.n for got in history.log_lines(RUN)] == [1, 2, 3]


async def test_malformed_oversized_and_misplaced_batches_are_rejected(
    broker: InMemoryBroker, recorder: Recorder, history: History
) -> None:
    huge = batch(RUN, 2, [line("t1", n, "x" * 8000) for n in range(40)])
    misplaced = batch(RUN, 3, [line("t1", 1)], source="engine-2")
    topic = logs_topic("local", "default", RUN, source="engine-1")  # not engine-2's
    await _publish(broker, recorder, (logs_topic("local", "default", RUN), {"seq": 1}),
                   _on_topic(huge), (topic, misplaced))  # fmt: skip
    assert len(huge.lines) * 8000 > MAX_LOG_PAYLOAD_BYTES
    assert (recorder.stats.rejected, recorder.stats.stored) == (3, 0)
    assert history.log_lines(RUN) == []


async def test_a_batch_with_a_line_dated_ahead_of_the_clock_is_rejected(
    broker: InMemoryBroker, recorder: Recorder, history: History
) -> None:
    """A line dated 9999-12-31 inside a batch dated now would be shown by `logs --since 1h`
    for ever: its batch is rejected, as an envelope stamped ahead is refused."""
    dated = datetime(9999, 12, 31, tzinfo=timezone.utc).timestamp()
    forged = batch(RUN, 1, [line("t1", 1), line("t1", 2, ts=dated)])
    await _publish(broker, recorder, _on_topic(forged))
    assert (recorder.stats.rejected, recorder.stats.stored) == (1, 0)
    assert history.log_lines(RUN) == []


async def test_a_batch_from_another_source_than_the_runs_is_refused(
    broker: InMemoryBroker, recorder: Recorder, history: History
) -> None:
    """The recorder follows the run from engine-1's events: engine-2's logs are refused in
    the callback, counted on the run."""
    started = telemetry(_STARTED, run_id=RUN, source="engine-1", seq=1)
    await _publish(
        broker, recorder,
        (started.topic, started.payload),
        _on_topic(batch(RUN, 1, [line("t1", 1)], source="engine-2")),
    )  # fmt: skip
    assert recorder.stats.refused == 1
    assert history.log_lines(RUN) == []
    run = history.run(RUN)
    assert run is not None
    assert run.run.refused == {REASON_FOREIGN: 1}


async def test_a_shared_recorder_takes_logs_through_the_group(
    broker: InMemoryBroker, history: History
) -> None:
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, share="g")
        await recorder.start()
        assert await recorder.check_sharing(timeout=5)
        await _publish(broker, recorder, _on_topic(batch(RUN, 1, [line("t1", 1)])))
        await recorder.stop()
    assert recorder.stats.stored == 1
    assert len(history.log_lines(RUN)) == 1


async def test_keep_logs_prunes_old_lines_as_it_records(
    broker: InMemoryBroker, history: History
) -> None:
    """Lines received two hours ago go with keep_logs=1h; the run (no keep) stays."""
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, clock=lambda: time.time() - 7200)
        await recorder.start()
        then = datetime.now(timezone.utc) - timedelta(hours=2)
        started = telemetry(_STARTED, run_id=RUN, source="engine-1", seq=1, ts=then)
        logs = batch(RUN, 1, [line("t1", 1)], ts=then.timestamp())
        await _publish(broker, recorder, (started.topic, started.payload), _on_topic(logs))
        await recorder.stop()
        assert len(history.log_lines(RUN)) == 1
        pruning = Recorder(connector, history, keep_logs=3600.0)
        await pruning.start()
        for _ in range(100):
            if not history.log_lines(RUN):
                break
            await asyncio.sleep(0.02)
        await pruning.stop()
    assert history.log_lines(RUN) == []
    assert [run.run_id for run in history.runs()] == [RUN]
