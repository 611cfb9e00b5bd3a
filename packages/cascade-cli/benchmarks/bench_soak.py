"""A soak of the readers (issue 91): one engine running runs of 1,000 coroutine tasks (every
10th logging a line) on a private mosquitto, at the issue's pace (``--pace``, about 9,500
messages a second; 0: back to back), with `cascade record`, `cascade dashboard` (on the same
history) and `cascade watch` (on a pseudo-terminal) beside it as real processes.

Every ``--every`` seconds it prints a row: the runs the engine finished and the messages it
sent a second, each reader's RSS (MB) and CPU, the machine's idle CPU, the dashboard's live
runs and missed events, the recorder's queue and what it dropped and shed (its latest note in
the history; ``--recorder-metrics`` serves and reads its metrics instead, which cost it a second
reading of every message), and what the history holds: its runs and the events its recorder
found missing (``History.gaps``). The end says how much each reader's memory grew after its
first minutes (``--settle``): flat is what a reader that holds a steady load shows. A
benchmark, not a timed test:

    python bench_soak.py                      # 3 minutes, 1,000 tasks a run, SQLite
    python bench_soak.py --minutes 12         # the issue's soak
    python bench_soak.py --db postgresql+psycopg://postgres@127.0.0.1:5432/soak
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from cascade.history import History, RecorderNote
from cascade.testkit import MosquittoBroker

READY_TIMEOUT = 60.0
ISSUE_PACE = 4.3
"""Runs a second in the issue's soak (2,079 runs of 1,000 tasks in 8 minutes: about 9,500
messages a second); ``--pace 0`` runs them back to back, as fast as the engine goes."""
_RSS = re.compile(r"VmRSS:\s+(\d+) kB")
_METRIC = re.compile(r"^(cascade_\w+)(?:\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)


def engine(host: str, port: int, tasks: int, runs_file: str, pace: float) -> None:
    """The engine process: runs of ``tasks`` coroutine tasks until killed, ``pace`` a second
    at most (back to back when 0); each finished run writes how many have, and the messages
    published so far, to ``runs_file``."""
    from cascade.connectors.mqtt import MqttConnector
    from cascade.runtime import Engine, task

    log = logging.getLogger("soak")
    log.setLevel(logging.INFO)

    @task
    async def work(index: int) -> int:
        if index % 10 == 0:
            log.info("task %d logs a line", index)
        return index

    async def main() -> None:
        async with MqttConnector(host, port, source_id="soak-engine") as connector:
            runner = Engine(connector)
            finished = 0
            loop = asyncio.get_running_loop()
            due = loop.time()
            while True:
                await runner.run([work(i) for i in range(tasks)])
                finished += 1
                sent = connector.stats.published
                Path(runs_file).write_text(f"{finished} {sent}\n")  # noqa: ASYNC240 a few bytes
                if pace:  # the next run's start is due 1/pace after this one's, not later
                    due = max(due + 1 / pace, loop.time() - 1.0)
                    await asyncio.sleep(due - loop.time())

    asyncio.run(main())


def rss_mb(pid: int) -> float:
    """A process's resident memory, MB (nan once it is gone)."""
    try:
        found = _RSS.search(Path(f"/proc/{pid}/status").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    return int(found.group(1)) / 1024 if found else float("nan")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user and system), seconds (nan once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_second(count: float, span: float) -> str:
    """``count`` over ``span`` seconds, as the table shows it ("-" where it is not known)."""
    return "-" if math.isnan(count) else f"{count / span:,.0f}"


def idle_seconds() -> float:
    """The machine's idle CPU time so far, every core's, seconds (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle and iowait


def cli(*args: str) -> list[str]:
    """``cascade ARGS``, as users run it, with this interpreter."""
    return [sys.executable, "-m", "cascade.cli", *args]


def started_on(process: subprocess.Popen[str], name: str, pattern: str) -> str:
    """The first match of ``pattern`` in ``process``'s output (its address); the rest of its
    output is drained in a thread."""
    assert process.stdout is not None
    said = []
    for line in process.stdout:
        found = re.search(pattern, line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return found.group(1)
        said.append(line)
    raise RuntimeError(f"{name} ended before it was ready: {''.join(said)[-2000:]}")


def piped(command: list[str]) -> subprocess.Popen[str]:
    """``command`` started, its output (and errors) read as text by :func:`started_on`."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def watch_on_pty(broker: list[str]) -> subprocess.Popen[bytes]:
    """`cascade watch` drawing its table on a pseudo-terminal (drained, never shown)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
    process = subprocess.Popen(cli("watch", *broker), stdin=secondary, stdout=secondary,
                               stderr=secondary, env=env)  # fmt: skip
    os.close(secondary)

    def drain() -> None:
        with contextlib.suppress(OSError):
            while os.read(primary, 65_536):
                pass

    threading.Thread(target=drain, daemon=True).start()
    return process


def scraped(http: httpx.Client, url: str) -> dict[str, float]:
    """A reader's /metrics, each metric summed over its labels (empty when it does not
    answer)."""
    try:
        text = http.get(url).text
    except httpx.HTTPError:
        return {}
    figures: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        figures[name] = figures.get(name, 0.0) + float(value)
    return figures


def history_figures(db: str) -> tuple[int, int, RecorderNote | None]:
    """Runs the history holds, the events its recorders found missing, and the recorder's
    latest note on itself (its queue, what it dropped and shed)."""
    with History(db) as history:
        notes = history.recorders()
        missed = sum(gap.missed for gap in history.gaps())
        return history.count_runs(), missed, max(notes, key=lambda n: n.noted_at, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between two rows")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks of each run")
    parser.add_argument("--pace", type=float, default=ISSUE_PACE,
                        help="runs a second at most (0: back to back); the default is the"
                        " issue's soak, about 9,500 messages a second")  # fmt: skip
    parser.add_argument("--settle", type=float, default=2.0,
                        help="minutes after which a reader's memory must be flat")  # fmt: skip
    parser.add_argument("--db", default=None, help="the history's URL (a SQLite file unless)")
    parser.add_argument("--recorder-metrics", action="store_true",
                        help="the recorder serves its metrics (--metrics-listen), read for what"
                        " it stored a second; its metrics read every message again")  # fmt: skip
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="run `cascade record` under cProfile into FILE")  # fmt: skip
    parser.add_argument("--engine", nargs=5,
                        metavar=("HOST", "PORT", "TASKS", "RUNS_FILE", "PACE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args, _ = parser.parse_known_args()  # `nox -s soak -- ...` passes its flags
    if args.engine:
        host, port, tasks, runs_file, pace = args.engine
        engine(host, int(port), int(tasks), runs_file, float(pace))
        return
    # killed (nox interrupted, a timeout): the readers, the engine and the broker stop with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        db = args.db or f"sqlite:///{folder}/history.db"
        broker = stack.enter_context(MosquittoBroker())
        on = ["--host", "127.0.0.1", "--port", str(broker.port)]
        processes: dict[str, subprocess.Popen[str] | subprocess.Popen[bytes]] = {}

        def stop_all() -> None:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()

        stack.callback(stop_all)
        recording = cli("record", "--db", db, *on)
        if args.recorder_metrics:
            recording[4:4] = ["--metrics-listen", "127.0.0.1:0"]
        if args.profile:  # written when it stops (SIGTERM ends `cascade record` cleanly)
            recording[1:2] = ["-m", "cProfile", "-o", args.profile, "-m"]
        record = processes["record"] = piped(recording)
        ready = r"metrics on (http://\S+/metrics)" if args.recorder_metrics else r"(recording) "
        metrics_url = started_on(record, "record", ready)
        dashboard = processes["dashboard"] = piped(
            cli("dashboard", "--db", db, "--listen", "127.0.0.1:0", *on)
        )
        dashboard_metrics = (
            started_on(dashboard, "dashboard", r"cascade dashboard on (http://\S+/)") + "metrics"
        )
        processes["watch"] = watch_on_pty(on)
        runs_file = folder / "runs.txt"
        runs_file.touch()
        processes["engine"] = subprocess.Popen(
            [sys.executable, __file__, "--engine", "127.0.0.1", str(broker.port),
             str(args.tasks), str(runs_file), str(args.pace)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        readers = ("dashboard", "record", "watch")
        working = ("engine", *readers)
        paced = f"at most {args.pace:g} a second" if args.pace else "back to back"
        print(f"soak: {args.minutes:g} min of runs of {args.tasks:,} tasks, {paced};"
              f" history {db}\n")  # fmt: skip
        print("| min | runs | engine msg/s | " + " | ".join(f"{r} MB" for r in readers)
              + " | recorder stored/s | " + " | ".join(f"{w} CPU %" for w in working)
              + " | machine idle % | dashboard's live runs | dashboard missed"
              " | recorder queued | dropped | shed | history runs | missing events |")  # fmt: skip
        print("|--:|" + "--:|" * (2 * len(readers) + 11))
        samples: list[tuple[float, dict[str, float]]] = []
        http = stack.enter_context(httpx.Client(timeout=10))
        began = time.monotonic()
        # when, stored, the engine's messages sent, each process's CPU, the machine's idle
        last = (began, 0.0, 0, {w: cpu_seconds(processes[w].pid) for w in working}, idle_seconds())
        end = began + args.minutes * 60
        while True:
            time.sleep(max(0.0, min(args.every, end - time.monotonic())))
            minutes = (time.monotonic() - began) / 60
            rss = {name: rss_mb(processes[name].pid) for name in readers}
            samples.append((minutes, rss))
            runs, sent = (int(n) for n in (runs_file.read_text() or "0 0").split())
            figures = scraped(http, metrics_url) if args.recorder_metrics else {}
            seen = scraped(http, dashboard_metrics)
            live = seen.get("cascade_runs_running", float("nan"))
            missed = seen.get("cascade_missed_events", float("nan"))
            recorded, missing, note = history_figures(db)
            queued, dropped, shed = (note.queued, note.dropped, note.shed) if note else (0, 0, 0)
            now, stored = time.monotonic(), figures.get("cascade_recorder_stored_total", math.nan)
            cpu, idle = {w: cpu_seconds(processes[w].pid) for w in working}, idle_seconds()
            span = now - last[0]
            busy = " | ".join(f"{100 * (cpu[w] - last[3][w]) / span:.0f}" for w in working)
            print(f"| {minutes:.1f} | {runs:,} | {(sent - last[2]) / span:,.0f} | "
                  + " | ".join(f"{rss[name]:.0f}" for name in readers)
                  + f" | {per_second(stored - last[1], span)} | {busy}"
                  f" | {100 * (idle - last[4]) / span / (os.cpu_count() or 1):.0f}"
                  f" | {live:,.0f} | {missed:,.0f} | {queued:,.0f}"
                  f" | {dropped:,.0f} | {shed:,.0f} | {recorded:,} | {missing:,} |",
                  flush=True)  # fmt: skip
            last = (now, stored, sent, cpu, idle)
            if time.monotonic() >= end:
                break
        settled = [rss for minutes, rss in samples if minutes >= args.settle]
        print(f"\nmemory after {args.settle:g} min (first sample to last):")
        for name in readers:
            if len(settled) >= 2:
                first_mb, last_mb = settled[0][name], settled[-1][name]
                span = samples[-1][0] - next(m for m, _ in samples if m >= args.settle)
                rate = (last_mb - first_mb) / span if span else 0.0
                print(f"  {name}: {first_mb:.0f} -> {last_mb:.0f} MB ({rate:+.1f} MB/min)")


if __name__ == "__main__":
    main()
