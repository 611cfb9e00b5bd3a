"""One `cascade record` against two sharing the stream (``--share``), into one PostgreSQL.

What is measured: publisher processes (``bench_sustained.py``'s: runs of 50 tasks, two
numbered states each at QoS 0, the run's start and end at QoS 1) offer ``--rate`` events a
second in all for ``--seconds`` through a private mosquitto; `cascade record --share g
--protocol 5` records them into a private PostgreSQL (``fsync=off``): one recorder alone, then
two in the group (mosquitto gives each message to one of them: MQTT 5 shared subscriptions),
each with its default queue (100,000 messages; beyond it, messages are dropped and counted).
Per layout and round: what the publishers sent, what the database holds of it, what was lost
(sent and never stored: dropped by a recorder whose queue was full, which it counts, or shed
before its queue, by its connector or the broker, for a subscriber that fell behind) and what
the recorders counted as dropped (stored and lost as the database holds them once the
recorders stopped), the rate it was stored at (what the database held once nothing more came
for 5 s, over the time from the first publish to the last write seen), and each recorder's
CPU per event it stored (its whole process, start included). The offered rate is meant to be
above what one recorder takes: one alone falls behind (measured here: its event loop, reading
the broker, is what gives, and what it cannot read in time is lost before its queue, counted
by no recorder but in each run's missing events), where two store everything. Everything
(publishers, mosquitto, recorders, PostgreSQL) shares this machine's cores: the figures are
the recorders' share of them.

    python bench_shared_recorders.py [--rate 40000] [--seconds 10] [--publishers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sustained import StoredCounter, _cpu_seconds

from cascade.history import History
from cascade.testkit import MosquittoBroker, PrivatePostgreSQL, postgresql_bin

SUSTAINED = Path(__file__).resolve().parent / "bench_sustained.py"
QUIET_FOR = 5.0  # seconds without a new event stored: the recorders have written it all


def start_recorder(port: int, url: str) -> subprocess.Popen[str]:
    """`cascade record --share g --protocol 5`, once it says it records (and shares)."""
    recorder = subprocess.Popen(
        [sys.executable, "-m", "cascade.cli", "record", "--host", f"127.0.0.1:{port}",
         "--db", url, "--share", "g", "--protocol", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert recorder.stdout is not None
    first = recorder.stdout.readline()
    if "sharing the telemetry with group g" not in first:
        recorder.kill()
        raise RuntimeError(first + (recorder.stderr.read() if recorder.stderr else ""))
    return recorder


def one_round(broker: MosquittoBroker, url: str, recorders: int, args: Any) -> dict[str, Any]:
    """``recorders`` sharing the stream the publishers offer; the figures."""
    History(url, mode="write").close()  # the schema, made before the clock starts
    running = [start_recorder(broker.port, url) for _ in range(recorders)]
    each = args.rate // args.publishers
    command = [sys.executable, str(SUSTAINED), "--publish", str(broker.port), str(each),
               str(args.seconds)]  # fmt: skip
    publishers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.publishers)
    ]
    sent, began, took = 0, float("inf"), 0.0
    for publisher in publishers:
        out, _ = publisher.communicate(timeout=args.seconds * 10 + 60)
        count, _confirmed, _dropped, elapsed, wall = out.split()
        sent += int(count)
        began, took = min(began, float(wall)), max(took, float(elapsed))
    counter = StoredCounter(url)
    stored, last_change = -1, time.time()
    try:
        while time.time() - last_change < QUIET_FOR:
            count_now = counter.count()
            if count_now != stored:
                stored, last_change = count_now, time.time()
            if stored >= sent:
                break
            time.sleep(0.1)  # polling other processes' database
        cpu = [_cpu_seconds(recorder.pid) for recorder in running]
        dropped = 0
        kept = []
        for recorder in running:  # each writes what it still holds as it stops
            recorder.send_signal(signal.SIGTERM)
            out, _ = recorder.communicate(timeout=120)
            summary = out.strip().splitlines()[-1]
            found = re.search(r"([\d,]+) stored, .* ([\d,]+) dropped", summary)
            assert found is not None, summary
            kept.append(int(found[1].replace(",", "")))
            dropped += int(found[2].replace(",", ""))
        rate = stored / max(last_change - began, 1e-9)
        stored = counter.count()
    finally:
        counter.close()
    return {
        "sent": sent,
        "offered": sent / took,
        "stored": stored,
        "lost": sent - stored,
        "dropped": dropped,
        "rate": rate,
        "cpu_us": [1e6 * c / max(k, 1) for c, k in zip(cpu, kept, strict=True)],
        "kept": kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=40_000, help="events a second offered")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    args, _ = parser.parse_known_args()  # `nox -s bench -- ...` passes every script's flags
    bin_dir = postgresql_bin()
    if bin_dir is None:
        print("bench_shared_recorders: PostgreSQL is not installed; nothing measured")
        return
    rows: list[tuple[int, dict[str, Any]]] = []
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(MosquittoBroker())
        server = stack.enter_context(PrivatePostgreSQL(bin_dir))
        for _ in range(args.rounds):
            for recorders in (1, 2):
                url = str(server.url(server.create_database()))
                rows.append((recorders, one_round(broker, url, recorders, args)))
    print(f"`cascade record --share g` into one PostgreSQL, {args.rate:,} events/s offered for "
          f"{args.seconds:g} s by {args.publishers} publishers through mosquitto; "
          f"{os.cpu_count()} CPUs for all of it, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| recorders | sent | sent/s | stored | lost | dropped (counted) | stored/s "
          "| each stored | recorder CPU µs/event |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for recorders, r in rows:
        each = " + ".join(f"{k:,}" for k in r["kept"])
        cpu = " / ".join(f"{c:.0f}" for c in r["cpu_us"])
        figures = (r["sent"], r["offered"], r["stored"], r["lost"], r["dropped"], r["rate"])
        print(
            "| " + " | ".join([str(recorders), *(f"{n:,.0f}" for n in figures), each, cpu]) + " |"
        )
    for recorders in (1, 2):
        mine = [r for n, r in rows if n == recorders]
        print(f"{recorders} recorder(s): median {statistics.median(r['rate'] for r in mine):,.0f} "
              f"events/s stored, {statistics.median(r['lost'] for r in mine):,.0f} lost, over "
              f"{len(mine)} round(s)")  # fmt: skip


if __name__ == "__main__":
    main()
