"""How much of what the broker delivers each Cascade reader takes in, beside `mosquitto_sub`.

A private mosquitto; a publisher process writes task-event envelopes (~350 B, numbered
with ``seq`` as engines number them) on one run's events topic, then the run's end (QoS
1, the last number). Each reader runs alone, as its own process, as users run it:

- ``mosquitto_sub``: the C client, the baseline (its lines are counted);
- ``MqttConnector``: a bare subscriber (a callback that counts, and a GapCounter);
- ``watch --json``: `cascade watch --json` writing to a file (lines counted; its own
  report of what it missed read from stderr);
- ``watch``: the live table on a pseudo-terminal (what it missed read from its footer);
- ``dashboard``: `cascade dashboard` with one page following the run's stream (what it
  missed read from ``/api/state``).

Two tables, medians of ``--repeats`` runs: a sustained rate (``--rate`` messages/s for
``--seconds``), and a burst of ``--burst`` messages written at once (the broker's full
speed). Columns: the share received, what the reader said it missed and whether that
equals what it did not receive (where both are known), and for the burst the rate it
took the burst in, as a ratio to mosquitto_sub's in the same run.

    python bench_readers.py [--rate 20000] [--seconds 10] [--burst 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from cascade.testkit import MosquittoBroker

RUN_ID = "5f1c" * 8
SOURCE = "bench-engine"
TOPIC = f"cascade/telemetry/bench/readers/{RUN_ID}/events"
READERS = ("mosquitto_sub", "MqttConnector", "watch --json", "watch", "dashboard")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _publish_packet(payload: bytes, qos: int) -> bytes:
    topic = TOPIC.encode()
    body = len(topic).to_bytes(2, "big") + topic + (b"\x00\x01" if qos else b"") + payload
    return bytes((0x30 | qos << 1,)) + _varint(len(body)) + body


def _envelope(seq: int, body: Mapping[str, object]) -> bytes:
    envelope = {
        "v": "1.0", "ts": "2026-11-23T14:02:00.000000+00:00", "run_id": RUN_ID,
        "org_id": "bench", "project_id": "readers", "source": SOURCE, "seq": seq, "body": body,
    }  # fmt: skip
    return json.dumps(envelope, separators=(",", ":")).encode()


def publish(port: int, rate: float, count: int) -> None:
    """The publisher (a process of its own): ``count`` task events at ``rate``/s (0: at once),
    then the run's end at QoS 1, over a plain socket (no client library in the way)."""
    start_event = _envelope(1, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"})
    packets = [_publish_packet(start_event, 1)]
    for seq in range(2, count + 2):
        body = {
            "type": "TaskStateEvent", "task_id": f"transform-{seq // 2}",
            "task_name": "transform_partition", "state": "RUNNING" if seq % 2 else "COMPLETED",
            "duration_ms": 12.5, "error": "",
        }  # fmt: skip
        packets.append(_publish_packet(_envelope(seq, body), 0))
    end = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded", "error": ""}
    last = _publish_packet(_envelope(count + 2, end), 1)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = b"bench-publisher"
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client).to_bytes(2, "big") + client
    sock.sendall(b"\x10" + _varint(len(connect)) + connect)
    assert sock.recv(4)[:2] == b"\x20\x02", "no CONNACK"
    began = time.perf_counter()
    if rate <= 0:
        sock.sendall(b"".join(packets))
    else:
        sent = 0
        while sent < len(packets):
            due = min(len(packets), int((time.perf_counter() - began) * rate) + 1)
            if due > sent:
                sock.sendall(b"".join(packets[sent:due]))
                sent = due
            else:
                time.sleep(0.0005)
    sock.sendall(last)
    sock.recv(4)  # its PUBACK: the broker has everything
    sock.sendall(b"\xe0\x00")
    sock.close()
    print(f"{time.perf_counter() - began:.3f}", flush=True)


CONNECTOR_READER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from cascade.connectors.mqtt import MqttConnector
    from cascade.interfaces import GapCounter

    async def main(port, topic):
        gaps, seen, times = GapCounter(), set(), []
        ended = asyncio.Event()

        def on_message(message):
            seq = message.payload["seq"]
            seen.add(seq)
            gaps.see("s", "r", seq)
            now = time.perf_counter()
            if not times:
                times.append(now)
            if message.payload["body"].get("event") == "ENGINE_STOPPED":
                times.append(now)
                ended.set()

        async with MqttConnector("127.0.0.1", port, presence=False) as connector:
            await connector.subscribe(topic, on_message)
            print("ready", flush=True)
            await ended.wait()
            print(json.dumps({"received": len(seen), "missed": gaps.missed,
                              "took": times[-1] - times[0]}), flush=True)

    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
    """
)


@dataclass
class Result:
    received: int  # distinct events received (-1: not known, only the reader's own count)
    missed: int  # what the reader said it missed (-1: it does not say)
    took: float  # seconds from its first message to the run's end (nan: not measured)


def run_reader(name: str, port: int, rate: float, count: int) -> Result:
    """Start reader ``name``, publish, and collect what it took in."""
    total = count + 2
    with tempfile.TemporaryDirectory() as tmp:
        if name == "mosquitto_sub":
            return _mosquitto_sub(port, rate, count, total)
        if name == "MqttConnector":
            return _connector(port, rate, count)
        if name == "watch --json":
            return _watch_json(port, rate, count, total, Path(tmp))
        if name == "watch":
            return _watch_table(port, rate, count, total)
        return _dashboard(port, rate, count, total)


def _publish(port: int, rate: float, count: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--publish", str(port), str(rate), str(count)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout)


def _cli(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "cascade.cli", *args, "--host", "127.0.0.1", "--port", str(port)]


def _mosquitto_sub(port: int, rate: float, count: int, total: int) -> Result:
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(port), "-t", TOPIC, "-q", "1", "-F", "%U %p"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sub.stdout is not None
    time.sleep(0.5)  # mosquitto_sub says nothing when it has subscribed
    stamps: list[float] = []
    seen: set[int] = set()
    publisher = threading.Thread(target=_publish, args=(port, rate, count))
    publisher.start()
    for line in sub.stdout:
        found = re.search(r'"seq":(\d+)', line)
        if found:
            seen.add(int(found.group(1)))
            stamps.append(time.perf_counter())
        if "ENGINE_STOPPED" in line:
            break
    sub.terminate()
    sub.communicate()
    publisher.join()
    return Result(len(seen), -1, stamps[-1] - stamps[0])


def _connector(port: int, rate: float, count: int) -> Result:
    reader = subprocess.Popen(
        [sys.executable, "-c", CONNECTOR_READER, str(port), TOPIC],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reader.stdout is not None
    assert reader.stdout.readline() == "ready\n"
    _publish(port, rate, count)
    report = json.loads(reader.stdout.readline())
    reader.wait(30)
    return Result(report["received"], report["missed"], report["took"])


def _ends_after(rate: float, count: int) -> float:
    """A reader's --duration: the publishing time and a few seconds to drain."""
    return (count / rate if rate > 0 else 2.0) + 8.0


def _watch_json(port: int, rate: float, count: int, total: int, tmp: Path) -> Result:
    out, err = tmp / "out", tmp / "err"
    duration = _ends_after(rate, count)
    with out.open("w") as stdout, err.open("w") as stderr:
        watch = subprocess.Popen(
            _cli(port, "watch", "--json", "--duration", str(duration)), stdout=stdout, stderr=stderr
        )
        time.sleep(2.0)  # it has subscribed (its start takes about a second)
        _publish(port, rate, count)
        watch.wait(duration + 30)
    seen = {int(m) for m in re.findall(r'"seq": ?(\d+)', out.read_text())}
    said = re.search(r"missed ([\d,]+) events", err.read_text())
    return Result(len(seen), int(said.group(1).replace(",", "")) if said else 0, float("nan"))


def _watch_table(port: int, rate: float, count: int, total: int) -> Result:
    duration = _ends_after(rate, count)
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
    watch = subprocess.Popen(
        _cli(port, "watch", "--duration", str(duration)),
        stdin=secondary, stdout=secondary, stderr=secondary, env=env,
    )  # fmt: skip
    os.close(secondary)
    screen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    time.sleep(2.0)
    _publish(port, rate, count)
    watch.wait(duration + 30)
    reader.join(10)
    os.close(primary)
    text = ANSI.sub("", b"".join(screen).decode(errors="replace"))
    said = re.findall(r"missed ([\d,]+) events from", text)
    return Result(-1, int(said[-1].replace(",", "")) if said else 0, float("nan"))


def _dashboard(port: int, rate: float, count: int, total: int) -> Result:
    server = subprocess.Popen(
        [*_cli(port, "dashboard"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    url = ""
    for line in server.stdout:
        found = re.search(r"cascade dashboard on (http://\S+/)", line)
        if found:
            url = found.group(1)
            break
    threading.Thread(target=server.stdout.read, daemon=True).start()
    stop = threading.Event()

    def page() -> None:  # one page following the run, as a browser would
        with (
            httpx.Client(timeout=None) as client,
            client.stream("GET", f"{url}api/stream?run={RUN_ID}") as stream,
        ):
            for _ in stream.iter_bytes():
                if stop.is_set():
                    return

    try:
        follower = threading.Thread(target=page, daemon=True)
        follower.start()
        time.sleep(2.0)
        _publish(port, rate, count)
        deadline = time.monotonic() + 60
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                state = client.get(f"{url}api/state").json()
                runs = [r for r in state["runs"] if r["run_id"] == RUN_ID]
                if runs and runs[0]["status"] != "Running":
                    break
                time.sleep(0.2)
        missed = sum(m["events"] for m in state["missed"])
        return Result(-1, missed, float("nan"))
    finally:
        stop.set()
        server.send_signal(signal.SIGINT)
        server.wait(30)


def table(title: str, rows: dict[str, list[Result]], total: int, baseline_took: float) -> None:
    print(f"\n{title}")
    print(f"{'reader':<15} {'received':>9} {'said missed':>12} {'= not received':>15} "
          f"{'took':>18} {'x mosquitto_sub':>16}")  # fmt: skip
    for name, results in rows.items():
        received = [r.received if r.received >= 0 else total - r.missed for r in results]
        share = statistics.median(received) / total
        said = [r.missed for r in results]
        said_text = f"{statistics.median(said):,.0f}" if min(said) >= 0 else "-"
        if min(r.received for r in results) >= 0 and min(said) >= 0:
            exact = "yes" if all(r.missed == total - r.received for r in results) else "NO"
        else:
            exact = "-"
        took = [r.took for r in results if r.took == r.took]
        took_text = f"{statistics.median(took):.2f} s" if took else "-"
        ratio = f"{baseline_took / statistics.median(took):.2f}" if took else "-"
        print(f"{name:<15} {share:>9.1%} {said_text:>12} {exact:>15} {took_text:>18} {ratio:>16}")


def main(args: argparse.Namespace) -> None:
    readers = args.readers.split(",")
    with MosquittoBroker(extra_config="set_tcp_nodelay true\n") as broker:
        count = int(args.rate * args.seconds)
        sustained: dict[str, list[Result]] = {name: [] for name in readers}
        burst: dict[str, list[Result]] = {name: [] for name in readers}
        for _ in range(args.repeats):
            for name in readers:
                sustained[name].append(run_reader(name, broker.port, args.rate, count))
                burst[name].append(run_reader(name, broker.port, 0, args.burst))
        sub = [r.took for r in burst.get("mosquitto_sub", [])]
        baseline = statistics.median(sub) if sub else float("nan")
        table(f"{args.rate:,.0f} messages/s for {args.seconds:g} s ({count + 2:,} messages), "
              f"medians of {args.repeats}", sustained, count + 2, float("nan"))  # fmt: skip
        table(f"a burst of {args.burst:,} messages at once, medians of {args.repeats}",
              burst, args.burst + 2, baseline)  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--readers", default=",".join(READERS))
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--publish":
        publish(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        asyncio.run(asyncio.to_thread(main, parse()))
