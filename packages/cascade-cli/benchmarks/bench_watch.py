"""Benchmark of `cascade watch`'s state: RSS growth at a steady event rate, bounded vs unbounded.

Feeds a :class:`~cascade.reader.ReaderModel` the telemetry of back-to-back runs
of ``--run-tasks`` tasks (RUNNING then COMPLETED per task, 50 in flight, a
heartbeat per second, the run's start and end) at ``--rate`` events per
second of simulated time for ``--minutes`` simulated minutes (the state's
clock and the messages' timestamps follow the simulation, so three minutes
take seconds), rendering the live view every 5 simulated seconds as `watch`
would. Each row runs in a child process of its own and reports its RSS
(VmRSS) growth over the feed, at a third, two thirds and the end:

- ``bounded``: the defaults of `cascade watch` (--keep-runs 20, --keep-for 10m);
- ``unbounded``: the same model with no bound (keep_runs and keep_for None);
- ``baseline``: the CLI's WatchState of ``--baseline-ref`` (the commit before the
  bounds, by default), loaded from git, which kept every task of every run.

Target: under 50 MiB growth for 3 minutes at 10,000 events/s (``--full``).
The default is a shorter smoke run (30 s).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CLI_PATH = "packages/cascade-cli/src/cascade/cli"
BASELINE_REF = "18e01b1d4e50d8c3c656a62eec4a88256e40dfe2"  # main before the bounds
TARGET_MIB = 50.0
IN_FLIGHT = 50
RENDER_EVERY = 5.0  # simulated seconds


def rss_kib() -> int:
    """This process's resident set size now (VmRSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class _Stamp:
    """ISO 8601 timestamps of simulated time, the part up to the second cached."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, ts: float) -> str:
        second = int(ts)
        if second != self._second:
            self._second = second
            when = datetime.fromtimestamp(second, timezone.utc)
            self._prefix = when.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((ts - second) * 1e6):06d}+00:00"


def events(rate: float, seconds: float, run_tasks: int, start: float) -> Any:
    """``(sim_time, topic, payload)`` of back-to-back runs, ``rate`` events per simulated second."""
    from cascade.interfaces import events_topic, heartbeat_topic

    stamp = _Stamp()
    step = 1.0 / rate
    now = start
    end = start + seconds
    run = 0
    next_beat = start + 1.0
    while now < end:
        run_id = f"{run:08x}-5f1c-4e0b-9a7e-{run:012x}"
        topic = events_topic("local", "default", run_id)
        beat_topic = heartbeat_topic("local", "default", run_id)
        done = 0

        def envelope(body: dict[str, Any], ts: float, run_id: str = run_id) -> dict[str, Any]:
            return {
                "v": "1.0",
                "ts": stamp(ts),
                "run_id": run_id,
                "org_id": "local",
                "project_id": "default",
                "source": "bench-engine-4242",
                "body": body,
            }

        bodies: list[dict[str, Any]] = [
            {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": run_tasks}
        ]
        for j in range(run_tasks + IN_FLIGHT):
            if j < run_tasks:
                bodies.append(_task(j, "RUNNING"))
            if j >= IN_FLIGHT:
                bodies.append(_task(j - IN_FLIGHT, "COMPLETED"))
        bodies.append({"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"})
        for body in bodies:
            if body["type"] == "TaskStateEvent" and body["state"] == "COMPLETED":
                done += 1
            yield now, topic, envelope(body, now)
            now += step
            if now >= next_beat:
                next_beat += 1.0
                beat = {"type": "Heartbeat", "completed": done, "running": IN_FLIGHT,
                        "pending": max(0, run_tasks - done - IN_FLIGHT)}  # fmt: skip
                yield now, beat_topic, envelope(beat, now)
            if now >= end:
                return
        run += 1


def _task(j: int, state: str) -> dict[str, Any]:
    return {
        "type": "TaskStateEvent",
        "task_id": f"step-{j:06d}-7d3e9c41",
        "task_name": "step",
        "state": state,
        "duration_ms": 12.5 if state == "COMPLETED" else 0.0,
        "error": "",
    }


def _baseline(ref: str) -> tuple[Any, Any]:
    """WatchState and render_watch at git ``ref``, loaded as a package of their own."""
    package = Path(tempfile.mkdtemp()) / "baseline_cli"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("_views.py", "_state.py", "_render.py"):  # _views.py is newer than some refs
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{CLI_PATH}/{name}"],
            capture_output=True,
            text=True,
            check=name != "_views.py",
        )
        if shown.returncode == 0:
            (package / name).write_text(shown.stdout)
    sys.path.insert(0, str(package.parent))
    state = importlib.import_module("baseline_cli._state")
    render = importlib.import_module("baseline_cli._render")
    return state.WatchState, render.render_watch


def child(mode: str, minutes: float, rate: float, run_tasks: int, ref: str) -> None:
    """In a child process: feed one state, print its RSS growth as JSON."""
    from rich.console import Console

    from cascade.cli.rendering._render import render_watch
    from cascade.interfaces import Message
    from cascade.reader import ReaderModel

    start = 1_800_000_000.0
    now = [start]

    def clock() -> float:
        return now[0]

    state: Any
    render: Any = render_watch
    if mode == "bounded":
        state = ReaderModel(clock=clock)
    elif mode == "unbounded":
        state = ReaderModel(clock=clock, keep_runs=None, keep_for=None)
    else:
        baseline_state, render = _baseline(ref)
        state = baseline_state(clock=clock)
    console = Console(file=io.StringIO(), width=120, force_terminal=True)
    seconds = minutes * 60
    marks = [start + seconds / 3, start + 2 * seconds / 3]
    gc.collect()
    before = rss_kib()
    samples: list[int] = []
    next_render = start + RENDER_EVERY
    count = 0
    began = time.perf_counter()
    for ts, topic, payload in events(rate, seconds, run_tasks, start):
        now[0] = ts
        state.apply(Message(topic, payload))
        count += 1
        if ts >= next_render:
            next_render += RENDER_EVERY
            if hasattr(state, "prune"):
                state.prune()
            console.print(render(state))
            console.file = io.StringIO()
        if marks and ts >= marks[0]:
            marks.pop(0)
            samples.append(rss_kib() - before)
    elapsed = time.perf_counter() - began
    gc.collect()
    samples.append(rss_kib() - before)
    tasks = sum(len(run.tasks) for run in state.runs.values())
    print(json.dumps({"mode": mode, "events": count, "seconds": elapsed, "growth_kib": samples,
                      "runs": len(state.runs), "tasks": tasks}))  # fmt: skip


def measure(mode: str, args: argparse.Namespace) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--child", mode, "--minutes", str(args.minutes),
               "--rate", str(args.rate), "--run-tasks", str(args.run_tasks),
               "--baseline-ref", args.baseline_ref]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  {mode}: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0.5, help="simulated minutes (0.5)")
    parser.add_argument("--full", action="store_true", help="3 minutes: the target's setting")
    parser.add_argument("--quick", action="store_true", help="10 simulated seconds")
    parser.add_argument("--rate", type=float, default=10_000.0, help="events per second")
    parser.add_argument("--run-tasks", type=int, default=1_000, help="tasks per run")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)  # `nox -s bench -- ...` passes every script's flags
    if args.full:
        args.minutes = 3.0
    elif args.quick:
        args.minutes = 10 / 60
    return args


def main() -> None:
    args = parse()
    if args.child:
        child(args.child, args.minutes, args.rate, args.run_tasks, args.baseline_ref)
        return
    print(
        f"watch state fed {args.rate:,.0f} events/s for {args.minutes:g} simulated minutes "
        f"(back-to-back runs of {args.run_tasks:,} tasks)",
        flush=True,
    )
    rows = [r for mode in ("bounded", "unbounded", "baseline") if (r := measure(mode, args))]
    print()
    print("| state | events | runs kept | tasks kept | RSS growth at 1/3 | 2/3 | end "
          "| feed time | vs baseline |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    baseline = next((r for r in rows if r["mode"] == "baseline"), None)
    for row in rows:
        growth = [f"{kib / 1024:.1f} MiB" for kib in row["growth_kib"]]
        while len(growth) < 3:
            growth.insert(0, "-")
        ratio = "-"
        if baseline is not None and baseline["growth_kib"][-1] > 0:
            ratio = f"{row['growth_kib'][-1] / baseline['growth_kib'][-1]:.2f}x"
        print(f"| {row['mode']} | {row['events']:,} | {row['runs']:,} | {row['tasks']:,} | "
              f"{' | '.join(growth)} | {row['seconds']:.1f} s | {ratio} |")  # fmt: skip
    bounded = next((r for r in rows if r["mode"] == "bounded"), None)
    if bounded is not None:
        end = bounded["growth_kib"][-1] / 1024
        verdict = "met" if end < TARGET_MIB else "NOT met"
        setting = "" if args.minutes >= 3 and args.rate >= 10_000 else " (target set for --full)"
        print(f"\nbounded growth < {TARGET_MIB:g} MiB: {end:.1f} MiB, {verdict}{setting}")


if __name__ == "__main__":
    main()
