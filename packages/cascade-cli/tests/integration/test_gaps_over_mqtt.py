"""A reader frozen while an engine publishes counts exactly the events the broker dropped for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import textwrap

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, TaskFailedError, task
from cascade.testkit import QOS_ORDER_NOT_KEPT, MosquittoBroker, skip_on_family

# Each task fails with an 8 KB error: 16,002 events, ~70 MB. mosquitto 2.0 keeps all of it for
# a connected reader that does not read (QoS 0 too), so what the reader loses is what its link
# sheds once it reads again: it reads faster than it hands messages to its callback (512 KiB a
# turn against 64 KiB), and holds at most its receive buffer of telemetry waiting (32 MiB by
# default, or a small one that makes the shedding start at once).
TASKS = 8_000
DEFAULT_BUFFER = 32 * 1024 * 1024
SOURCE = "gaps-engine"

# The reader: the connector and the watch state model, as `cascade watch` and the dashboard use
# them. It prints "ready" once subscribed, the seq of every event it applies, and, when told
# "end" on stdin after the run's end came, what its state counted as missed.
READER = textwrap.dedent(
    """
    import asyncio, json, sys
    from cascade.reader import ReaderModel
    from cascade.connectors.mqtt import MqttConnector
    from cascade.interfaces import telemetry_filter

    async def main(port, receive_buffer):
        state = ReaderModel()
        ended = asyncio.Event()

        def on_message(message):
            state.apply(message)
            seq = message.payload.get("seq")
            if seq is not None:
                print(seq, flush=True)
            if message.payload.get("body", {}).get("event") == "ENGINE_STOPPED":
                ended.set()

        async with MqttConnector(
            "127.0.0.1", port, presence=False, receive_buffer=receive_buffer
        ) as connector:
            await connector.subscribe(telemetry_filter(), on_message)
            print("ready", flush=True)
            await ended.wait()
            await asyncio.to_thread(sys.stdin.readline)
            gaps = state.gaps.by_source
            missed = {source: gap.missed for source, gap in gaps.items()}
            print(json.dumps({"missed": missed, "shed": connector.stats.shed}), flush=True)

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
    """
)


@task
async def fail(i: int) -> int:
    raise ValueError(f"{i:08d}" + "x" * 8_000)


async def _run_engine(broker: MosquittoBroker) -> None:
    connector = MqttConnector(broker.host, broker.port, source_id=SOURCE)
    with contextlib.suppress(TaskFailedError):
        await Engine(connector, heartbeat_interval=None).run([fail(i) for i in range(TASKS)])


@skip_on_family("rabbitmq", QOS_ORDER_NOT_KEPT)
@pytest.mark.parametrize("receive_buffer", [DEFAULT_BUFFER, 256 * 1024])
def test_a_frozen_reader_reports_exactly_what_it_missed(
    mosquitto_broker: MosquittoBroker, receive_buffer: int
) -> None:
    """SIGSTOP a reader, run an engine, SIGCONT: what it counts missed is what never arrived."""
    broker = mosquitto_broker
    with subprocess.Popen(
        [sys.executable, "-c", READER, str(broker.port), str(receive_buffer)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as reader:  # fmt: skip
        assert reader.stdin is not None
        assert reader.stdout is not None
        try:
            assert reader.stdout.readline() == "ready\n"
            reader.send_signal(signal.SIGSTOP)
            try:
                asyncio.run(_run_engine(broker))
            finally:
                reader.send_signal(signal.SIGCONT)
            received: set[int] = set()
            for line in reader.stdout:  # after the run's end, the reader waits to be told
                received.add(int(line))
                if max(received) == 2 * TASKS + 2:
                    break
            reader.stdin.write("end\n")
            reader.stdin.flush()
            report = json.loads(reader.stdout.readline())
            reader.wait(30)
        finally:
            reader.kill()
    total = 2 * TASKS + 2
    assert max(received) == total  # the run's end (QoS 1, numbered last) arrived
    never_received = total - len(received)
    assert never_received > 0, "nothing was shed: the reader was not frozen long enough"
    assert report["missed"] == {SOURCE: never_received}
