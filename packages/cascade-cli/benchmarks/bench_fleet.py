"""Every reader side by side, fed by a simulated fleet: one table of what each costs and keeps up.

A private mosquitto (``cascade.testkit``; or ``--broker HOST:PORT``); ``--engines`` simulated
engines (``FleetSimulator``) from ``--processes`` worker processes, one MQTT connection each:
retained presence, one run at a time of ``--tasks-per-run`` tasks that start, block, complete
and fail, numbered per run, heartbeats every 5 s, ``--rate`` events a second over the fleet.
The readers, each its own process as users run them, started once every engine is online
and before the runs begin (``--readers``, fleet_readers.py), from compiled bytecode as pip
installs them: ``cascade watch --json`` to a file, ``cascade status --json`` every 5 s,
``cascade dashboard`` with ``--pages`` pages following ``/api/stream`` (the token holder's,
pausing and resuming a task of their own; one with the run of a busy engine open, which
goes at ``--busy-rate`` events a second; a crowd) and ``/api/state`` polled, its
``/metrics`` scraped, ``cascade record`` into
SQLite (and, if asked, ``watch-table``: the live table on a pseudo-terminal). With
``--fleet-mode`` watch and the dashboard are given ``--fleet-threshold 0``: they read
the engines' summaries only (a CLI without that option: their rows say it refused). After
``--warmup`` seconds, ``--seconds`` are measured: each process's CPU (median of one-second
samples, % of one core) and RSS, and each reader's own figures. Then the fleet stops and
every engine's retained summary is read back and checked against the simulator's truth
(its runs by status, its tasks by state; fleet_summaries.py), and so are the counts the
views show of each engine (the dashboard's ``/api/state``, `cascade status --json`). Last,
one markdown table, the settings above it; the exit status is 1 if a summary or a view
disagreed. Linux only (/proc).

    python bench_fleet.py [--engines 10000] [--rate 20000] [--processes 2] [--seconds 30]
        [--tasks-per-run 20] [--warmup 10] [--readers watch,status,dashboard,metrics,record]
        [--busy-rate 1000] [--pages 2] [--fleet-mode] [--without-summaries SHARE]
        [--broker HOST:PORT] [--cases all] [--baseline REV]

With ``--baseline REV`` (``main``, say) each case runs twice, each time on a fleet and broker of
its own: first with the dashboard of REV's code (its packages' sources from ``git archive``,
first on its ``PYTHONPATH``), then with this tree's; a last table puts issue 66's aims, the
``/api/state`` p95 and a page's stream, of each beside the other, with what the latency
depends on (the load, the dashboard's CPU per message and per answer). Issue 66's fleet:

    python bench_fleet.py --readers dashboard --busy-rate 0 --pages 1 \
        --cases issue66,issue66-without --baseline main

The fleet's processes, mosquitto, the readers and this script share the machine: the lines
above the table say how busy it was, and how much of that was other work.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from fleet_cases import (
    CASES,
    RECOVERY_FOR,
    Case,
    Figures,
    Recovery,
    aims_table,
    figures,
    parse_cases,
    recover,
    targets_table,
)
from fleet_measure import (
    Context,
    Reader,
    ReaderFailed,
    Row,
    Sampler,
    box_busy,
    cpu_seconds,
    mb,
    rss_mb,
)
from fleet_readers import READERS, Dashboard, StatusPoll
from fleet_summaries import dashboard_engines, status_engines, summaries_row, views_row

from cascade.testkit import (
    FleetCounts,
    FleetSettings,
    FleetSimulator,
    MosquittoBroker,
    mosquitto_path,
)

ALL_READERS = ("watch", "watch-table", "status", "dashboard", "metrics", "record")
DEFAULT_READERS = "watch,status,dashboard,metrics,record"
READY_TIMEOUT = 300.0  # readers taking in every engine's retained birth
ROOT = Path(__file__).resolve().parents[3]
REACHED = 0.97  # a fleet that published this share of the asked rate reached it
LATE_JOIN = 2.0  # seconds the fleet runs before the readers start, in the late case


def log(text: str) -> None:
    print(f"bench_fleet: {text}", file=sys.stderr, flush=True)


def make_readers(
    names: list[str],
    context: Context,
    pages: int,
    busy: FleetSettings | None,
    dashboard_env: dict[str, str] | None = None,
) -> list[Reader]:
    readers = [READERS[name](context) for name in names if name in READERS]
    if "dashboard" in names or "metrics" in names:
        page, scrape = "dashboard" in names, "metrics" in names
        busy_project = busy.project_id if busy is not None else ""
        readers.append(
            Dashboard(context, page, scrape, pages=pages, busy=busy_project, env=dashboard_env)
        )
    return readers


def baseline_env(revision: str, into: Path) -> dict[str, str]:
    """An environment whose ``cascade`` packages are ``revision``'s: every package's sources
    of it, extracted into ``into``, first on ``PYTHONPATH`` (then this tree's, for what it
    lacks)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "packages"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    sources = sorted(str(p) for p in (into / "packages").glob("*/src") if p.is_dir())
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    path = os.pathsep.join([*sources, *(p for p in sys.path if p)])
    return {**os.environ, "PYTHONPATH": path}


def state_cost(engines: int, without: float, env: dict[str, str] | None) -> dict[str, float]:
    """fleet_state_cost.py in a process of the code measured (``env``: a baseline's)."""
    script = Path(__file__).with_name("fleet_state_cost.py")
    printed = subprocess.run(
        [sys.executable, str(script), str(engines), str(without)],
        check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    costs: dict[str, float] = json.loads(printed.splitlines()[-1])
    return costs


def one_run_tasks(args: argparse.Namespace, warmup: float) -> int:
    """Tasks enough for each engine's one run to outlast the bench, as a rule (a task makes
    about two events; ten seconds more for the stop): no more, as a stopped engine says each
    task left failed, thousands of engines' at once."""
    events: float = args.rate * (warmup + args.seconds + 10.0) / args.engines
    return max(int(args.tasks_per_run), math.ceil(events / 2))


def busy_settings(args: argparse.Namespace, fleet: FleetSettings) -> FleetSettings | None:
    """The busy engine: one more engine whose one run (as long as the bench) goes at
    ``--busy-rate`` events a second, a page's busy run to open; ``None`` at rate 0."""
    if args.busy_rate <= 0:
        return None
    tasks = int(args.busy_rate * (args.warmup + args.seconds + 600)) // 4 + 1
    return FleetSettings(
        fleet.host, fleet.port, engines=1, rate=args.busy_rate, processes=1,
        tasks_per_run=tasks, concurrency=20, name=f"busy-{fleet.name}",
    )  # fmt: skip


def run_like_installed() -> None:
    """The readers start as pip installs them, from compiled bytecode: compile this tree's
    sources once, and let every child read (and write) the cached bytecode."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sources = [p for p in (ROOT / "packages").glob("*/src") if p.is_dir()]
    compileall = [sys.executable, "-m", "compileall", "-q", *map(str, sources)]
    subprocess.run(compileall, check=True, stdout=subprocess.DEVNULL)


def start_readers(
    readers: list[Reader], stack: contextlib.ExitStack
) -> tuple[list[Reader], list[Row]]:
    """Start the readers and wait until each has the fleet: those that are ready, and a row
    for each that is not (it ended first, say a CLI that refused an option, or was late)."""
    started, failed = [], []
    for reader in readers:
        log(f"starting {reader.name}")
        try:
            reader.start()
        except ReaderFailed as error:
            failed.append(Row(reader.name, figures=f"did not run: {error}"))
            continue
        stack.callback(reader.stop)
        started.append(reader)
    deadline = time.monotonic() + READY_TIMEOUT
    ready = []
    for reader in started:
        try:
            reader.wait_ready(deadline)
        except (ReaderFailed, TimeoutError) as error:
            log(f"{reader.name} did not run: {error}")
            reader.stop()
            failed.append(Row(reader.name, figures=f"did not run: {error}"))
        else:
            ready.append(reader)
    return ready, failed


def fleet_row(args: argparse.Namespace, first: FleetCounts, last: FleetCounts) -> Row:
    rate, beats = last.rate_since(first), last.heartbeat_rate_since(first)
    summaries = last.summary_rate_since(first)
    reached = rate >= REACHED * args.rate
    said = "reached" if reached else (f"NOT reached: {rate / args.rate:.0%}, its processes "
                                      "could not keep up on this machine")  # fmt: skip
    return Row(
        f"fleet ({args.processes} processes)",
        takes=f"{rate:,.0f} ev + {beats:,.0f} hb + {summaries:,.0f} sum sent",
        figures=f"asked {args.rate:,.0f} events/s: {said}; "
        f"{last.runs_started - first.runs_started:,} runs started, "
        f"{last.shortfall - first.shortfall:,} events short; {last.unsent:,} unsent, "
        f"{last.disconnects:,} connections lost",
    )


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| process | CPU % of a core (waited %) | RSS MB | takes in /s | missed | lag s "
        "| its own figures |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        lines.append(f"| {r.name} | {r.cpu} | {r.rss} | {r.takes} | {r.missed} | {r.lag} | "
                     f"{r.figures} |")  # fmt: skip
    return lines


def mosquitto_version() -> str:
    path = mosquitto_path()
    if path is None:
        return "mosquitto"
    out = subprocess.run([path, "-h"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "mosquitto"


def main(args: argparse.Namespace) -> None:
    run_like_installed()
    names = [name.strip() for name in args.readers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_READERS))
    if unknown:
        raise SystemExit(f"unknown readers {unknown}; known: {', '.join(ALL_READERS)}")
    cases = parse_cases(args.cases)
    found = []
    with tempfile.TemporaryDirectory(prefix="cascade-baseline-") as folder:
        base_env = baseline_env(args.baseline, Path(folder)) if args.baseline else None
        for case in cases:
            if base_env is not None:
                log(f"case {case.name}: {case.label}; the dashboard of {args.baseline}")
                found.append(run_case(args, names, case, base_env, f"base {args.baseline}"))
            log(f"case {case.name}: {case.label}")
            found.append(run_case(args, names, case))
    print(f"\n{len(found)} cases, one after another, each on a broker of its own; the "
          "targets of issue 51 beside each figure (the first answer: /api/state without "
          "parameters at the window's end; its p95: a page's /api/state polled every second; "
          "the stream: the token holder's page on the overview):\n")  # fmt: skip
    print("\n".join(targets_table(found)))
    print("\nIssue 66's aims, each dashboard on a fleet of its own, one after the other (the "
          "load average at the window's end; CPU per message: the dashboard's over the window; "
          f"in process: {args.engines:,} engines, a page's /api/state after 500 summaries, "
          "median of 30):\n")  # fmt: skip
    print("\n".join(aims_table(found)))
    if not all(f.agree for f in found):
        raise SystemExit("bench_fleet: a summary or a view disagrees with the simulator")


def run_case(
    args: argparse.Namespace,
    names: list[str],
    case: Case,
    dashboard_env: dict[str, str] | None = None,
    code: str = "this tree",
) -> Figures:
    """One case: a fleet on a broker of its own, the readers beside it (the dashboard in
    ``dashboard_env``: ``code``'s), its table printed; its figures against the targets."""
    without = args.without_summaries if case.without_summaries is None else case.without_summaries
    warmup = args.warmup if case.warmup is None else case.warmup
    tasks = one_run_tasks(args, warmup) if case.one_run else args.tasks_per_run
    load = os.getloadavg()[0]
    started_first_second: tuple[int, int] | None = None
    recovery: Recovery | None = None
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cascade-fleet-")))
        broker_pid: int | None = None
        if args.broker:
            host, _, port_text = args.broker.rpartition(":")
            port, broker_said = int(port_text), f"given: {args.broker} (not measured)"
        else:
            broker = stack.enter_context(MosquittoBroker())
            host, port, broker_pid = broker.host, broker.port, broker.pid
            broker_said = f"a private {mosquitto_version()} (cascade.testkit's configuration)"
        settings = FleetSettings(
            host, port, engines=args.engines, rate=args.rate, processes=args.processes,
            tasks_per_run=tasks, without_summaries=without, beats_within=case.beats_within,
        )  # fmt: skip
        fleet = FleetSimulator(settings)
        log(f"{args.engines:,} engines ({settings.name}) in {args.processes} processes: online")
        fleet.start()
        stack.callback(fleet.stop)
        fleet.wait_ready()
        busy_engine = busy_settings(args, settings)
        busy_fleet = FleetSimulator(busy_engine) if busy_engine is not None else None
        if busy_fleet is not None:
            busy_fleet.start()
            stack.callback(busy_fleet.stop)
            busy_fleet.wait_ready()
            busy_fleet.go()  # its run begins before the readers, for a page to open it
        context = Context(host, port, settings.name, args.engines, folder, args.fleet_mode)
        if case.readers_late:
            fleet.go()
            log(f"the fleet runs; readers join after {LATE_JOIN:g} s")
            time.sleep(LATE_JOIN)
        readers, failed = start_readers(
            make_readers(names, context, args.pages, busy_engine, dashboard_env), stack
        )
        sampler = Sampler()
        sampler.add("fleet", fleet.pids)
        if busy_fleet is not None:
            sampler.add("busy engine", busy_fleet.pids)
        if broker_pid is not None:
            sampler.add("mosquitto", [broker_pid])
        for reader in readers:
            sampler.add(reader.name, reader.pids())
            for name, pids in reader.helpers().items():
                sampler.add(name, pids)
        sampler.add("bench", [os.getpid()])
        sampler.start()
        stack.callback(sampler.stop)
        going = not case.readers_late and warmup > 0  # else: the window begins at its start
        if going:
            fleet.go()
            log(f"runs at {args.rate:,.0f} events/s: {warmup:g} s of warm-up")
            time.sleep(warmup)
        if case.restart:
            recovery = restart_dashboard(readers, sampler, args.seconds)
        measured = [pid for pids in sampler.groups.values() for pid in pids]
        began = time.monotonic()
        first, busy0, ours0 = fleet.counts(), box_busy()[0], sum(map(cpu_seconds, measured))
        busy_first = busy_fleet.counts() if busy_fleet is not None else None
        for reader in readers:  # each reader's own window starts and ends at its marks
            reader.mark(end=False)
        if not going and not case.readers_late:  # measured from the fleet's first second
            fleet.go()
            started_first_second = first_second(fleet, args.engines)
        log(f"measuring {args.seconds:g} s")
        time.sleep(max(0.0, began + args.seconds - time.monotonic()))
        ended = time.monotonic()
        last, (busy1, cpus), ours1 = fleet.counts(), box_busy(), sum(map(cpu_seconds, measured))
        busy_last = busy_fleet.counts() if busy_fleet is not None else None
        for reader in readers:
            reader.mark(end=True)
        load_at_end = os.getloadavg()[0]
        window = (began, ended)
        rss = {name: sum(map(rss_mb, pids)) for name, pids in sampler.groups.items()}
        sampler.stop()
        log("stopping the fleet; reading every engine's summary back, and the views'")
        final = fleet.stop()
        checked, agree = summaries_row(settings, final)
        views: dict[str, Callable[[], dict[str, Any]]] = {
            "status --json": lambda: status_engines(context)
        }
        views.update(("the dashboard's /api/state", functools.partial(dashboard_engines, r.url))
                     for r in readers if isinstance(r, Dashboard))  # fmt: skip
        seen, views_agree = views_row(settings, final, views)
        agree = agree and views_agree
        log("stopping the readers (each says what it missed)")
        for reader in readers:
            reader.stop()
        rows = [fleet_row(args, first, last)]
        rows[0].cpu, rows[0].rss = sampler.cell("fleet", window), mb(rss["fleet"])
        if busy_engine is not None and busy_fleet is not None and busy_first and busy_last:
            busy_checked, busy_agrees = summaries_row(busy_engine, busy_fleet.stop())
            agree = agree and busy_agrees
            rows.append(Row(
                "busy engine (1 process)", sampler.cell("busy engine", window),
                mb(rss["busy engine"]), f"{busy_last.rate_since(busy_first):,.0f} ev sent",
                figures=f"one run of {busy_engine.tasks_per_run:,} tasks, "
                f"{busy_engine.concurrency} at once, "
                f"asked {args.busy_rate:,.0f} events/s; its summary read back: "
                f"{busy_checked.figures.split(';')[0]}",
            ))  # fmt: skip
        if broker_pid is not None:
            cpu = sampler.cell("mosquitto", window)
            rows.append(Row("mosquitto", cpu, mb(rss["mosquitto"]), figures="the broker"))
        for reader in readers:
            rows += reader.rows(sampler)
        rows += [*failed, checked, seen]
        cpu = sampler.cell("bench", window)
        rows.append(Row("this script", cpu, mb(rss["bench"]),
                        figures="the pages' streams (but the crowd's), the polls, the "
                        "scrapes, the status calls' output, the file and database "
                        "reads"))  # fmt: skip
        polls = sum(p.cpu for r in readers if isinstance(r, StatusPoll) for p in r.polls
                    if window[0] <= p.began <= window[1])  # fmt: skip
        seconds = window[1] - window[0]
        busy = (busy1 - busy0) / seconds
        others = max(0.0, busy - (ours1 - ours0 + polls) / seconds)
    command = shlex.join(["python", "bench_fleet.py", *sys.argv[1:]])
    print(f"\n## case {case.name}: {case.label} ({code}'s dashboard)\n\n`{command}`\n")
    beats = ("spread over it" if settings.beats_within is None else
             f"every engine's within the same {settings.beats_within:g} s")  # fmt: skip
    print(f"- fleet: {args.engines:,} engines ({settings.name}) in {args.processes} processes, "
          f"one MQTT connection each; runs of {tasks} tasks ({settings.concurrency} "
          f"at once; {settings.fail_ratio:.0%} fail, {settings.block_ratio:.0%} block), "
          f"heartbeats every {settings.heartbeat_interval:g} s, {beats}; "
          f"{settings.without_summaries:.0%} of the engines send no summary")  # fmt: skip
    print(f"- asked {args.rate:,.0f} events/s; published {last.rate_since(first):,.0f} events/s "
          f"and {last.heartbeat_rate_since(first):,.0f} heartbeats/s; "
          f"{last.runs_started - first.runs_started:,} runs started in the window")  # fmt: skip
    when = (
        "after the runs began"
        if case.readers_late
        else "once every engine was online, before the runs began"
    )
    print(f"- measured {seconds:.0f} s after {warmup:g} s of warm-up; the readers started "
          f"{when}")  # fmt: skip
    print(f"- broker: {broker_said}")
    if args.fleet_mode:
        print("- fleet mode: watch and the dashboard given --fleet-threshold 0 (the "
              "engines' summaries only; watch without --project)")  # fmt: skip
    print(f"- machine: {cpus} CPUs, busy {busy:.2f} cores on average in the window, "
          f"{others:.2f} of them not this benchmark's (other work); load average {load:.1f} "
          "at the start")  # fmt: skip
    print()
    print("\n".join(table(rows)))
    print()
    print("CPU: the median of one-second samples (status: its calls' CPU over the window); "
          "waited: the median share of a second its threads were ready to run but waited "
          "for a CPU (a busy machine). "
          "Takes in: ev events, hb heartbeats, sum engines' summaries, msg every message "
          "(heartbeats and statuses too). Missed: what the reader says it missed, over its "
          "life. Lag: from the newest event it holds (watch: in its file; record: in its "
          "database; the dashboard: the latest an engine was heard of) to the window's "
          "end.")  # fmt: skip
    found = figures(case, readers, sampler, agree, recovery)
    found.started_first_second = started_first_second
    found.code, found.load = code, load_at_end
    if any(isinstance(r, Dashboard) for r in readers):
        found.state_cpu_ms = state_cost(args.engines, without, dashboard_env)["state_cpu_ms"]
    return found


def first_second(fleet: FleetSimulator, engines: int) -> tuple[int, int]:
    """The runs the fleet started in its first second (of ``engines`` engines)."""
    began = time.monotonic()
    time.sleep(1.0)
    started = fleet.counts().runs_started
    log(f"{started:,} runs started in the first {time.monotonic() - began:.1f} s")
    return started, engines


def restart_dashboard(readers: list[Reader], sampler: Sampler, seconds: float) -> Recovery | None:
    """Restart the dashboard among ``readers`` and time its recovery (``None``: no dashboard);
    its pages and polls open again, and the sampler follows its new processes."""
    for reader in readers:
        if isinstance(reader, Dashboard):
            log("restarting the dashboard")
            recovery = recover(reader, max(seconds, RECOVERY_FOR))
            reader.wait_ready(time.monotonic() + READY_TIMEOUT)
            sampler.add(reader.name, reader.pids())
            for name, pids in reader.helpers().items():
                sampler.add(name, pids)
            return recovery
    return None


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--engines", type=int, default=10_000, help="simulated engines")
    parser.add_argument(
        "--rate",
        type=float,
        default=20_000,
        help="task and run events a second over the fleet (heartbeats come on top); two "
        "worker processes publish 20,000/s with about 60 %% of a core between them, so on two "
        "cores the fleet reaches it while the readers leave it CPU (the table says if not)",
    )
    parser.add_argument("--processes", type=int, default=2, help="the fleet's worker processes")
    parser.add_argument("--tasks-per-run", type=int, default=20, help="tasks of each run")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, after the warm-up")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of runs first")
    parser.add_argument(
        "--readers",
        default=DEFAULT_READERS,
        help=f"comma-separated, of {', '.join(ALL_READERS)}",
    )
    parser.add_argument(
        "--busy-rate",
        type=float,
        default=1_000,
        help="events a second of one more engine's one run, which a page opens (0: none)",
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=2,
        help="the dashboard's pages: the token holder's on the overview, one with the busy "
        "run open, the rest on the overview from a process of their own",
    )
    parser.add_argument(
        "--fleet-mode",
        action="store_true",
        help="watch and the dashboard read the engines' summaries only (--fleet-threshold 0)",
    )
    parser.add_argument(
        "--without-summaries",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="the share of the engines that send no summary (0.1: every tenth; 1: none does)",
    )
    parser.add_argument(
        "--broker", metavar="HOST:PORT", help="a broker of yours, not a private one"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default="",
        help="run each case with REV's dashboard too (main, say), first, and print issue 66's "
        "aims of both side by side",
    )
    parser.add_argument(
        "--cases",
        default="all",
        help=f"comma-separated, run one after another with the options above, of: "
        f"{', '.join(CASES)} (fleet_cases.py); all: every one",
    )
    # `nox -s bench -- ...` passes every script the same flags
    args, _ = parser.parse_known_args(argv)
    return args


if __name__ == "__main__":
    main(parse())
