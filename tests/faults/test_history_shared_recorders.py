"""History scale-out: two `cascade record --share g --protocol 5` into one PostgreSQL, through a
real mosquitto's shared subscription; one SIGKILLed mid-stream.

mosquitto gives each message to one recorder of the group; when one dies, its subscription goes
with its (clean) session and the survivor gets everything. No event is stored twice, and what
is missing is exactly what the dead one had received and not yet written (often nothing: it
writes as soon as anything is queued), each run's missing events: all of it from around the
kill, nothing after.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History
from cascade.testkit import (
    NO_MQTT5,
    NO_SHARED_SUBSCRIPTIONS,
    OwnBroker,
    PrivatePostgreSQL,
    own_postgresql,
    skip_on_family,
)

from .conftest import Figures
from .history_helpers import NumberedRun, RecorderProcess, run_status, stored_seqs, until

# Measured on RabbitMQ 3.10.8: the engine's MQTT 5 CONNECT here ends with "the broker closed
# the connection during the handshake" (docs/brokers.md: MQTT 5 CONNECT refused), and over MQTT
# 3.1.1 the recorder's own probe (Recorder.check_sharing) finds that nothing is delivered
# through $share/g/...: there is no group to share a stream in. NATS 2.9 alike (measured in
# tests/brokers: MQTT 5 refused, nothing delivered through $share/g/...).
pytestmark = [
    skip_on_family(family, f"{NO_MQTT5}; {NO_SHARED_SUBSCRIPTIONS}")
    for family in ("rabbitmq", "nats")
]

RATE = 2_000  # task states a second


@pytest.fixture
def postgresql() -> Iterator[PrivatePostgreSQL]:
    """A PostgreSQL cluster of this test's own."""
    yield from own_postgresql()


def _stored(summary: str) -> int:
    found = re.search(r"([\d,]+) stored", summary)
    assert found is not None, summary
    return int(found[1].replace(",", ""))


@pytest.mark.timeout(180)
async def test_history_two_shared_recorders_one_killed(
    own_broker: OwnBroker, postgresql: PrivatePostgreSQL, figures: Figures
) -> None:
    """Both store a share; one dies; the other takes the whole stream; nothing twice, and the
    loss is the dead one's unwritten messages, counted."""
    figures.scenario = "history scale-out: 2 shared recorders, 1 SIGKILLed"
    url = postgresql.url(postgresql.create_database())
    address = f"{own_broker.host}:{own_broker.port}"
    args = ("--host", address, "--db", url, "--share", "g", "--protocol", "5")
    engine = MqttConnector(own_broker.host, own_broker.port, presence=False, protocol="5")
    await engine.connect(require=True)
    recorders = [await RecorderProcess.start(*args), await RecorderProcess.start(*args)]
    loop = asyncio.get_running_loop()
    try:
        assert all("sharing the telemetry with group g" in r.first_line for r in recorders)
        run = NumberedRun(engine)
        await run.start()
        await run.tasks(3_000, per_second=RATE)
        await until(lambda: len(stored_seqs(url, run.run_id)) > 2_000, what="a first part")
        streaming = asyncio.create_task(run.tasks(6_000, per_second=RATE))
        await asyncio.sleep(1.0)  # mid-stream: both are receiving and writing
        recorders[0].kill()
        killed_at = run.seq
        await recorders[0].process.wait()
        await streaming
        await run.stop()
        await engine.flush(10)
        began = loop.time()
        await until(lambda: run_status(url, run.run_id) == "Succeeded", what="the run's end")
        caught_up = loop.time() - began
        code, summary = await recorders[1].finish()
    finally:
        for recorder in recorders:
            await recorder.close()
        await engine.disconnect()
    assert code == 0, recorders[1].errors

    seqs = stored_seqs(url, run.run_id)
    assert len(seqs) == len(set(seqs)), "an event stored twice"
    with History(url) as history:
        [stored_run] = history.runs()
    lost = sorted(set(run.sent) - set(seqs))
    assert stored_run.missing_events == len(lost)  # every loss counted
    survivor = _stored(summary)
    assert 0 < survivor < len(seqs)  # the dead one stored a share before it died
    # what the dead one had received and not written is lost (none, when its queue was empty
    # at the kill: it writes as soon as anything is queued); nothing after the kill's second
    assert all(seq <= killed_at + RATE for seq in lost), "a gap after the kill: not all went on"
    assert " 0 dropped" in summary

    figures.emitted = len(run.sent)
    figures.delivered = len(seqs)
    figures.dropped = len(lost)
    figures.seconds = caught_up
    figures.what = "end of stream to caught up"
    where = f" (seqs {lost[0]}..{lost[-1]}, the kill at {killed_at})" if lost else ""
    figures.notes.append(
        f"survivor stored {survivor}, the killed one {len(seqs) - survivor}; {len(lost)} lost"
        f"{where}, all counted as missing"
    )
