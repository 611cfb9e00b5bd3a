"""MqttConnector against the usual ways of publishing to MQTT, on a private mosquitto.

End-to-end delivered msgs/s: a ``mosquitto_sub`` subscriber must receive all N
~200-byte JSON messages; the clock runs from the first publish until it has.
Also the time a caller spends in ``publish()`` with the broker healthy and
hung (SIGSTOP), and the peak RSS after 1,000,000 publishes to a hung broker.

    python bench_connector.py [--quick] [--repeats 3]

Figures are medians over the repeats. The raw aiomqtt loop is slow (it awaits
one future per message), so it runs once per QoS unless ``--aiomqtt-repeats``.
Raw paho at QoS 1 keeps at most 1,000 messages unacknowledged (waiting on the
oldest): paho's bookkeeping per PUBACK grows with its queue, so 100,000 queued
at once would measure a quadratic slowdown rather than the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import MosquittoBroker

PAYLOAD = {
    "v": "1.0",
    "ts": "2026-11-21T00:41:02.791019+00:00",
    "run_id": "e0c2" * 8,
    "org_id": "local",
    "project_id": "default",
    "source": "host-4242",
    "body": {"type": "TaskStateEvent", "task_id": "t-1", "state": "RUNNING"},
}
LINE = json.dumps(PAYLOAD, separators=(",", ":"))
RAW = LINE.encode()
PAHO_QOS1_WINDOW = 1_000
FAST_PATH_VARIABLE = "CASCADE_MQTT_FAST_PATH"

Publisher = Callable[[MosquittoBroker, str, int, int], Coroutine[Any, Any, None]]


class Subscriber:
    """``mosquitto_sub`` counting N messages on a topic; ready once a retained probe arrived."""

    def __init__(self, broker: MosquittoBroker, topic: str, qos: int, count: int) -> None:
        probe = f"{topic}-probe"
        subprocess.run(
            ["mosquitto_pub", "-p", str(broker.port), "-t", probe, "-m", "x", "-r", "-q", "1"],
            check=True,
        )
        self.process = subprocess.Popen(
            [
                *("mosquitto_sub", "-p", str(broker.port), "-q", str(qos)),
                *("-C", str(count + 1), "-t", probe, "-t", topic),
            ],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # the probe: the subscription is in place
        self._drain = threading.Thread(target=self.process.stdout.read)
        self._drain.start()

    def wait(self, timeout: float = 600) -> None:
        self.process.wait(timeout)
        self._drain.join()
        assert self.process.stdout is not None
        self.process.stdout.close()


async def run_connector(broker: MosquittoBroker, topic: str, qos: int, n: int) -> None:
    async with MqttConnector(broker.host, broker.port, buffer_size=n) as connector:
        sub = Subscriber(broker, topic, qos, n)
        start = time.perf_counter()
        for _ in range(n):
            await connector.publish(topic, PAYLOAD, qos)
        await asyncio.to_thread(sub.wait)
        RESULT.append(time.perf_counter() - start)


async def run_connector_slow(broker: MosquittoBroker, topic: str, qos: int, n: int) -> None:
    """The connector with its fast path off: every message through paho's public publish()."""
    os.environ[FAST_PATH_VARIABLE] = "off"
    try:
        await run_connector(broker, topic, qos, n)
    finally:
        del os.environ[FAST_PATH_VARIABLE]


async def run_aiomqtt(broker: MosquittoBroker, topic: str, qos: int, n: int) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        sub = Subscriber(broker, topic, qos, n)
        start = time.perf_counter()
        for _ in range(n):
            await client.publish(topic, LINE, qos)
        await asyncio.to_thread(sub.wait)
        RESULT.append(time.perf_counter() - start)


async def run_paho(broker: MosquittoBroker, topic: str, qos: int, n: int) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        sub = Subscriber(broker, topic, qos, n)
        start = time.perf_counter()
        pending: deque[paho.MQTTMessageInfo] = deque()
        for _ in range(n):
            pending.append(client.publish(topic, LINE, qos))
            if qos and len(pending) > PAHO_QOS1_WINDOW:
                # paho's queue bookkeeping is O(queued) per PUBACK: unbounded it is quadratic
                pending.popleft().wait_for_publish()
        await asyncio.to_thread(sub.wait)
        RESULT.append(time.perf_counter() - start)
    finally:
        client.disconnect()
        client.loop_stop()


def start_mosquitto_pub(broker: MosquittoBroker, topic: str, qos: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-q", str(qos), "-l"],
        stdin=subprocess.PIPE,
    )


async def run_mosquitto_pub(broker: MosquittoBroker, topic: str, qos: int, n: int) -> None:
    # stdin stays open until everything arrived: at EOF mosquitto_pub 2.0 exits
    # without waiting for its QoS 1 messages in flight, and they are lost.
    data = (LINE + "\n").encode() * n
    sub = Subscriber(broker, topic, qos, n)
    pub = start_mosquitto_pub(broker, topic, qos)
    assert pub.stdin is not None
    start = time.perf_counter()
    writer = threading.Thread(target=pub.stdin.write, args=(data,))
    writer.start()
    await asyncio.to_thread(sub.wait)
    RESULT.append(time.perf_counter() - start)
    writer.join()
    pub.stdin.close()
    pub.wait()


RESULT: list[float] = []


def throughput(broker: MosquittoBroker, run: Publisher, qos: int, n: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        RESULT.clear()
        asyncio.run(run(broker, f"bench/{uuid.uuid4().hex[:8]}", qos, n))
        rates.append(n / RESULT[0])
    return statistics.median(rates)


async def publish_latency(broker: MosquittoBroker, n: int, hung: bool) -> tuple[float, float]:
    """Median and p99 seconds per publish() call, healthy or with the broker stopped."""
    durations = [0.0] * n
    async with MqttConnector(broker.host, broker.port, flush_timeout=0.5) as connector:
        if hung:
            broker.pause()
        try:
            clock = time.perf_counter
            for i in range(n):
                start = clock()
                await connector.publish("bench/latency", PAYLOAD, i & 1)
                durations[i] = clock() - start
                if i % 100 == 99:
                    await asyncio.sleep(0)  # an engine yields between tasks; the sender runs
        finally:
            broker.resume()
    durations.sort()
    return statistics.median(durations), durations[int(n * 0.99)]


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    VmHWM where /proc has it: ``ru_maxrss`` survives exec on Linux, so a child
    would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_probe(port: int, n: int) -> None:
    """In a child process: peak RSS after n publishes (broker already hung by the parent)."""

    async def main() -> None:
        connector = MqttConnector("127.0.0.1", port, flush_timeout=0.5, connect_timeout=2)
        await connector.connect()
        before = peak_rss_kib()
        print("connected", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the parent hung the broker
        for i in range(n):
            await connector.publish("bench/rss", PAYLOAD, i & 1)
            if i % 1000 == 999:
                await asyncio.sleep(0)
        after = peak_rss_kib()
        print(json.dumps({"before_kib": before, "peak_kib": after, **asdict(connector.stats)}))
        await connector.disconnect()

    asyncio.run(main())


def peak_rss(broker: MosquittoBroker, n: int) -> dict[str, int]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--rss-probe", str(broker.port), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.readline()  # connected
    broker.pause()
    try:
        out, _ = child.communicate("go\n", timeout=600)
    finally:
        broker.resume()
    result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=10,000, one run: a smoke test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--aiomqtt-repeats", type=int, default=1)
    parser.add_argument("--rss-probe", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(*args.rss_probe)
        return
    n = 10_000 if args.quick else 100_000
    repeats = 1 if args.quick else args.repeats
    rss_n = 100_000 if args.quick else 1_000_000
    print(f"payload {len(RAW)} bytes, N={n:,}, medians of {repeats} runs", flush=True)
    methods: list[tuple[str, Publisher, int]] = [
        ("MqttConnector.publish (fire-and-forget)", run_connector, repeats),
        ("MqttConnector, fast path off", run_connector_slow, repeats),
        (
            "raw aiomqtt `await client.publish` loop",
            run_aiomqtt,
            min(repeats, args.aiomqtt_repeats),
        ),
        ("raw paho-mqtt with loop_start", run_paho, repeats),
        ("mosquitto_pub -l (C client)", run_mosquitto_pub, repeats),
    ]
    rates: dict[tuple[str, int], float] = {}
    with MosquittoBroker() as broker:
        for qos in (0, 1):
            for name, run, times in methods:
                rates[(name, qos)] = throughput(broker, run, qos, n, times)
                print(f"  qos {qos} {name}: {rates[(name, qos)]:,.0f} msg/s", flush=True)
        healthy = asyncio.run(publish_latency(broker, n, hung=False))
        hung = asyncio.run(publish_latency(broker, n, hung=True))
        rss = peak_rss(broker, rss_n)

    connector, raw, pub = (methods[0][0], methods[2][0], methods[4][0])
    print()
    print("| method | QoS | msgs/s | vs mosquitto_pub | vs raw aiomqtt |")
    print("|---|---|---:|---:|---:|")
    for qos in (0, 1):
        for name, _, _ in methods:
            rate = rates[(name, qos)]
            print(
                f"| {name} | {qos} | {rate:,.0f} | {rate / rates[(pub, qos)]:.2f}x "
                f"| {rate / rates[(raw, qos)]:.1f}x |"
            )
    print()
    print("| publish() time per call | median | p99 |")
    print("|---|---:|---:|")
    print(f"| broker healthy | {healthy[0] * 1e6:.1f} µs | {healthy[1] * 1e6:.1f} µs |")
    print(f"| broker hung (SIGSTOP) | {hung[0] * 1e6:.1f} µs | {hung[1] * 1e6:.1f} µs |")
    print()
    print(
        f"peak RSS after {rss_n:,} publishes to a hung broker: {rss['peak_kib'] / 1024:.0f} MiB "
        f"(after connect: {rss['before_kib'] / 1024:.0f} MiB; dropped {rss['dropped']:,}, "
        f"buffered {rss['buffered']:,})"
    )
    print()
    targets = [
        ("QoS 0 vs mosquitto_pub >= 0.5", rates[(connector, 0)] / rates[(pub, 0)], 0.5),
        ("QoS 0 vs raw aiomqtt >= 7", rates[(connector, 0)] / rates[(raw, 0)], 7.0),
        ("QoS 1 vs mosquitto_pub >= 0.5", rates[(connector, 1)] / rates[(pub, 1)], 0.5),
    ]
    for label, value, target in targets:
        print(f"{label}: {value:.2f} {'met' if value >= target else 'NOT met'}")
    for label, (median, p99) in (("healthy", healthy), ("hung", hung)):
        ok = median <= 10e-6 and p99 <= 100e-6
        print(f"publish() {label}: median <= 10 µs and p99 <= 100 µs: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
