"""The recorder's CPU time per stored event, on SQLite and PostgreSQL, now and at a baseline.

What is measured: the CPU time (``time.process_time``: every thread of the process, the
writer's worker thread included) that a :class:`~cascade.history.Recorder` spends from the
first message handed to its subscription callback to the last one stored (``flush``),
divided by the events it stored. The messages are made beforehand, as the connector hands
them over (``Message`` with the payload decoded by the connector's own decoder, and its
bytes), and delivered to the callback the recorder subscribed with, in bursts of 200
between which the event loop runs (the writer's turns), as a connector's read loop does;
so the figure is the recorder's own path: callback, queue, batches, ``History.store``, in
one process with nothing else in it. It leaves out what the connector spends receiving
and decoding (paho, JSON to a dict: the same before and after), which
``bench_sustained.py`` includes (the whole `cascade record` process through mosquitto).

The traffic is a fleet's: ``--runs-at-once`` runs interleaved (from 10 engines), each its
start, 50 tasks' RUNNING and COMPLETED numbered with ``seq``, a heartbeat, its end: 103
messages, all stored. Delivered as fast as the recorder takes them, so its batches are
full (``batch_size``): the recorder at saturation, what bounds its rate; or, with ``--rate``,
paced at that many a second (a connector's reads between which the loop sleeps), where the
writer takes what is queued and its batches are smaller.

Each measurement is a process of its own (a fresh interpreter, a fresh database); the
``baseline`` rows run the same child with ``PYTHONPATH`` at ``cascade-history`` of
``--baseline-ref`` (``git archive``, the rest of the packages as installed). Now and
baseline alternate, ``--repeats`` times each; the table has the medians. PostgreSQL is a
private cluster (``cascade.testkit.PrivatePostgreSQL``, ``fsync=off``) where installed.

    python bench_recorder_cpu.py [--events 100000] [--repeats 3] [--baseline-ref REF]
    python bench_recorder_cpu.py --observe   # with the metrics `cascade record` serves
    python bench_recorder_cpu.py --child URL EVENTS RUNS RATE [observe]   # one, as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
BASELINE_REF = "650bf9821213c241ab968c6b94d47805b9d31f00"  # main before issue 34's work
HISTORY_SRC = "packages/cascade-history/src"
TASKS_PER_RUN = 50
SOURCES = 10
BURST = 200  # messages delivered between two turns of the event loop


def fleet(count: int, at_once: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(topic, envelope)`` of ``at_once`` runs interleaved, each as an engine sends it, until
    ``count`` messages."""
    now = time.time()
    made = 0
    started = 0

    def run(number: int) -> Iterator[tuple[str, dict[str, Any]]]:
        run_id = f"{number:032x}"
        source = f"engine-{number % SOURCES}"
        base = {"org_id": "local", "project_id": "fleet", "source": source, "run_id": run_id}
        events = f"cascade/telemetry/local/fleet/{run_id}/events"
        seq = 0

        def envelope(body: dict[str, Any], numbered: bool = True) -> dict[str, Any]:
            nonlocal seq
            stamp = datetime.fromtimestamp(now + made * 1e-5, timezone.utc).isoformat()
            out: dict[str, Any] = {"v": "1.0", "ts": stamp, **base, "body": body}
            if numbered:
                seq += 1
                out["seq"] = seq
            return out

        yield events, envelope({"type": "LifecycleEvent", "event": "ENGINE_STARTED",
                                "tasks": TASKS_PER_RUN})  # fmt: skip
        for index in range(TASKS_PER_RUN):
            for state in ("RUNNING", "COMPLETED"):
                duration = 0.0 if state == "RUNNING" else 12.5 + index
                body = {"type": "TaskStateEvent", "task_id": f"task-{index}",
                        "task_name": f"task_{index % 10}", "state": state,
                        "duration_ms": duration, "error": ""}  # fmt: skip
                yield events, envelope(body)
            if index == TASKS_PER_RUN // 2:
                beat = {"type": "Heartbeat", "running": 1, "completed": index, "last_seq": seq}
                yield events.replace("/events", "/heartbeat"), envelope(beat, numbered=False)
        yield events, envelope({"type": "LifecycleEvent", "event": "ENGINE_STOPPED",
                                "status": "Succeeded"})  # fmt: skip

    live: list[Iterator[tuple[str, dict[str, Any]]]] = []
    while made < count:
        while len(live) < at_once:
            live.append(run(started))
            started += 1
        for stream in list(live):
            item = next(stream, None)
            if item is None:
                live.remove(stream)
                continue
            yield item
            made += 1
            if made >= count:
                return


async def measure(
    url: str, count: int, at_once: int, rate: float = 0.0, observe: bool = False
) -> dict[str, Any]:
    """One measurement (in the child): CPU seconds, wall seconds, events stored; ``observe``:
    with the metrics `cascade record --metrics-listen` serves fed from the recorder."""
    import cascade.history
    from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
    from cascade.history import History, Recorder
    from cascade.interfaces import Message, MessageCallback, decode_payload, encode_payload

    class Tapped(InMemoryConnector):
        """The in-memory connector, keeping the recorder's telemetry callback to feed it."""

        telemetry: MessageCallback | None = None

        async def subscribe(self, topic_filter: str, callback: MessageCallback, **kw: Any) -> Any:
            if "/telemetry/" in topic_filter:
                self.telemetry = callback
            return await super().subscribe(topic_filter, callback, **kw)

    messages = []
    for topic, envelope in fleet(count, at_once):
        raw = encode_payload(envelope)
        messages.append(Message(topic=topic, payload=decode_payload(raw), raw=raw))
    with History(url, mode="write") as history:
        async with Tapped(InMemoryBroker(), presence=False) as connector:
            metrics = None
            if observe:
                from cascade.metrics import CascadeMetrics
                from cascade.reader import ReaderModel

                metrics = CascadeMetrics(ReaderModel(prefix=connector.topic_prefix))
            recorder = Recorder(
                connector,
                history,
                max_queue=count + 1,
                observe=metrics.apply if metrics is not None else None,
            )
            await recorder.start()
            deliver = connector.telemetry
            assert deliver is not None
            gc.collect()
            gc.freeze()  # the bench's own messages are no garbage the recorder's collections walk
            wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
            began = time.perf_counter()
            for start in range(0, len(messages), BURST):
                for message in messages[start : start + BURST]:
                    deliver(message)
                ahead = began + (start + BURST) / rate - time.perf_counter() if rate else 0.0
                await asyncio.sleep(max(0.0, ahead))  # the connector's read loop yields so
            await recorder.flush(timeout=600)
            loop = time.thread_time() - loop
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            await recorder.stop()
        stats = recorder.stats
        kept = sum(run.tasks.get("COMPLETED", 0) for run in history.runs(limit=10**6))
    if stats.stored != count or stats.rejected or stats.dropped or stats.refused:
        raise SystemExit(f"not everything was stored: {stats}")
    if kept != sum(1 for _, e in fleet(count, at_once) if e["body"].get("state") == "COMPLETED"):
        raise SystemExit(f"the history holds {kept} completed tasks")
    code = cascade.history.__file__
    return {"cpu": cpu, "loop": loop, "wall": wall, "stored": stats.stored, "code": code}


def baseline_tree(ref: str) -> Path:
    """``cascade-history``'s sources at ``ref`` in a temporary folder (for ``PYTHONPATH``)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-recorder-baseline-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, HISTORY_SRC],
        capture_output=True, check=True,
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder / HISTORY_SRC


def child(
    url: str, events: int, at_once: int, rate: float, pythonpath: Path | None, observe: bool
) -> dict[str, Any]:
    """One measurement in a fresh interpreter (the baseline's code with ``pythonpath``)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, str(events), str(at_once), str(rate),
         "observe" if observe else "-"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr or done.stdout)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    expected = str(pythonpath) if pythonpath is not None else str(ROOT / HISTORY_SRC)
    if not result["code"].startswith(expected):  # the code measured is the one meant
        raise RuntimeError(f"measured {result['code']}, not the code under {expected}")
    return result


def main() -> None:
    from cascade.testkit import PrivatePostgreSQL, postgresql_bin

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs-at-once", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: at saturation)")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--observe", action="store_true",
                        help="with the metrics `cascade record` serves")  # fmt: skip
    args, _ = parser.parse_known_args()  # `nox -s bench -- ...` passes every script's flags
    codes: dict[str, Path | None] = {"now": None}
    if not args.no_baseline:
        codes["baseline"] = baseline_tree(args.baseline_ref)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        targets: list[tuple[str, Any]] = [
            ("SQLite", lambda: f"sqlite:///{folder}/{time.time_ns()}.db")
        ]
        bin_dir = postgresql_bin()
        if bin_dir is not None:
            server = stack.enter_context(PrivatePostgreSQL(bin_dir))
            targets.append(("PostgreSQL", lambda: str(server.url(server.create_database()))))
        for _ in range(args.repeats):
            for database, make_url in targets:
                for code, path in codes.items():
                    one = child(
                        make_url(), args.events, args.runs_at_once, args.rate, path, args.observe
                    )
                    results.setdefault((database, code), []).append(one)
    pace = f"{args.rate:,.0f} events/s offered" if args.rate else "at saturation"
    print(f"recorder CPU per stored event, {pace}: {args.events:,} events, "
          f"{args.runs_at_once} runs at once, medians of {args.repeats} "
          f"(baseline: {args.baseline_ref[:12]}); "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| database | code | CPU µs/event | vs baseline | event loop | writer thread "
          "| stored/s (wall) | stored |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def per_event(runs: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(1e6 * r[key] / r["stored"] for r in runs))

    for (database, code), runs in results.items():
        cpu, loop = per_event(runs, "cpu"), per_event(runs, "loop")
        writer = statistics.median(1e6 * (r["cpu"] - r["loop"]) / r["stored"] for r in runs)
        rate = statistics.median(r["stored"] / r["wall"] for r in runs)
        base = results.get((database, "baseline"))
        ratio = "" if base is None else f"{cpu / per_event(base, 'cpu'):.2f}x"
        print(f"| {database} | {code} | {cpu:.1f} | {ratio} | {loop:.1f} | {writer:.1f} | "
              f"{rate:,.0f} | {int(runs[0]['stored']):,} |")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        url, events, at_once, rate = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        observe = sys.argv[6:7] == ["observe"]
        print(json.dumps(asyncio.run(measure(url, events, at_once, float(rate), observe))))
    else:
        main()
