"""What bench_fleet.py measures processes with, and the base of its readers (fleet_readers).

Processes are measured from /proc (Linux only): CPU as a share of one core, sampled every
second (the median of those samples is shown), and RSS. Each reader is started as users run
it, waits until it has the fleet's engines, marks the measured window's start and end, is
ended as Ctrl-C ends it, and gives its table row. One that ends before it is ready (a CLI
that rejects an option) raises :class:`ReaderFailed`, for its row to say why.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT = 120.0  # a reader that fell behind writes what it holds before it ends


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) a process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def waited_seconds(pid: int) -> float:
    """Seconds a process's threads have waited for a CPU, ready to run (/proc/PID/task/*/
    schedstat, the second field): what a busy machine costs it; 0 once it is gone."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total / 1e9


def rss_mb(pid: int) -> float:
    """A process's resident memory, MB (nan once it is gone)."""
    try:
        found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    return int(found.group(1)) / 1024 if found else float("nan")


def box_busy() -> tuple[float, int]:
    """CPU seconds the whole machine has been busy, and its CPU count (/proc/stat)."""
    lines = Path("/proc/stat").read_text().splitlines()
    ticks = [int(v) for v in lines[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS, sum(1 for line in lines if line[:3] == "cpu") - 1


def median_p95(values: list[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank) of ``values`` (nan when empty)."""
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


class Sampler:
    """CPU seconds, and seconds waited for a CPU, of groups of processes, read every second by
    a thread: a group's share of one core over the window is the median of its one-second
    shares, and so is the time it waited."""

    def __init__(self) -> None:
        self.groups: dict[str, list[int]] = {}
        self.samples: dict[str, list[tuple[float, float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str, pids: list[int]) -> None:
        self.groups[name] = pids
        self.samples[name] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for name, pids in list(self.groups.items()):
                cpu = sum(cpu_seconds(pid) for pid in pids)
                self.samples[name].append((now, cpu, sum(waited_seconds(pid) for pid in pids)))
            self._stop.wait(1.0)

    def share(self, name: str, window: tuple[float, float], waited: bool = False) -> float:
        """The median one-second CPU share (of one core) of group ``name`` in ``window``; with
        ``waited``, the median share of a second its threads waited for a CPU."""
        inside = [s for s in self.samples.get(name, []) if window[0] <= s[0] <= window[1]]
        at = 2 if waited else 1
        shares = [(b[at] - a[at]) / (b[0] - a[0]) for a, b in itertools.pairwise(inside)
                  if b[0] > a[0]]  # fmt: skip
        return statistics.median(shares) if shares else float("nan")

    def cell(self, name: str, window: tuple[float, float]) -> str:
        """``CPU % (waited %)`` of group ``name`` in ``window``."""
        return f"{percent(self.share(name, window))} ({percent(self.share(name, window, True))})"


@dataclass
class Row:
    """One line of the table."""

    name: str
    cpu: str = "-"
    rss: str = "-"
    takes: str = "-"
    missed: str = "-"
    lag: str = "-"
    figures: str = ""


def percent(share: float) -> str:
    return "-" if share != share else f"{100 * share:.0f}"


def mb(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def size(count: float) -> str:
    """A size in bytes as a cell: kB below a megabyte, MB above."""
    return f"{count / 1e3:.0f} kB" if count < 1e6 else f"{count / 1e6:.1f} MB"


def lag_after(ts: str | None, wall: float) -> str:
    """Seconds from an event's time to ``wall``, as a cell."""
    if not ts:
        return "-"
    return f"{max(0.0, wall - datetime.fromisoformat(ts).timestamp()):.1f}"


FLEET_MODE = ("--fleet-threshold", "0")  # the views read summaries only, whatever the runs


class ReaderFailed(RuntimeError):
    """A reader's process ended before it was ready; the message says why."""


def first_error(text: str) -> str:
    """What a CLI's error output says went wrong: its first line naming an error (the box a
    rich error is drawn in removed), else its last line."""
    lines = [line.strip(" │╭╰─╮╯\t") for line in text.splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if "Error" in line or "No such option" in line:
            return line
    return lines[-1] if lines else ""


@dataclass
class Context:
    """What every reader needs: the broker, the fleet's name and size, a folder of its own;
    ``fleet_mode``: watch and the dashboard read the engines' summaries only (status always
    does)."""

    host: str
    port: int
    fleet: str
    engines: int
    folder: Path
    fleet_mode: bool = False

    def cli(self, *args: str) -> list[str]:
        """``cascade ARGS`` on the broker, as users run it (the CLI of this interpreter)."""
        return [sys.executable, "-m", "cascade.cli", *args, "--host", self.host,
                "--port", str(self.port)]  # fmt: skip

    def view(self, *args: str) -> list[str]:
        """``cascade ARGS`` of a view that has a fleet mode, in it if asked."""
        return self.cli(*args, *(FLEET_MODE if self.fleet_mode else ()))

    def ours(self, source: str) -> bool:
        """Whether ``source`` is an engine of the fleet."""
        return source.startswith(self.fleet + "-")


class Reader:
    """A reader process: start, wait until it has the fleet, mark the window, stop, row.

    A reader with ``fleet_view`` is run in fleet mode when the context asks (its name says
    so)."""

    name = ""
    fleet_view = False

    def __init__(self, context: Context) -> None:
        self.context = context
        if self.fleet_view and context.fleet_mode:
            self.name = f"{self.name} [fleet mode]"
        self.process: subprocess.Popen[Any] | None = None
        self.window = (0.0, 0.0)
        self.cpu = (0.0, 0.0)  # its CPU seconds at the window's marks
        self.rss = float("nan")

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self, deadline: float) -> None:
        """Return once the reader has the fleet's engines (their retained births)."""

    def error_output(self) -> str:
        """What its process said on its stderr, as far as kept."""
        return ""

    def alive(self) -> None:
        """Raise :class:`ReaderFailed` if its process has ended."""
        process = self.process
        if process is not None and process.poll() is not None:
            why = first_error(self.error_output()) or "no word of why"
            raise ReaderFailed(f"ended (exit {process.returncode}) before it was ready: {why}")

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def helpers(self) -> dict[str, list[int]]:
        """Processes of its own the bench runs beside it (measured apart), by name."""
        return {}

    def mark(self, end: bool) -> None:
        """The window's start (``end`` false) or end: the reader's own counts, now."""
        now = time.monotonic()
        self.window = (self.window[0], now) if end else (now, now)
        cpu = sum(cpu_seconds(pid) for pid in self.pids())
        self.cpu = (self.cpu[0], cpu) if end else (cpu, cpu)
        if end:
            self.rss = sum(rss_mb(pid) for pid in self.pids())

    def cost(self, count: int, what: str) -> str:
        """The CPU it spent in the window per ``what`` it took in (``count`` of them), and
        what one core would take at that cost: a figure a busy machine changes little."""
        if count <= 0:
            return f"no {what} in the window"
        micros = 1e6 * (self.cpu[1] - self.cpu[0]) / count
        return f"{micros:.0f} µs of CPU per {what} (one core: {1e6 / micros:,.0f}/s)"

    def stop(self) -> None:
        """End it as Ctrl-C does (it says what it missed), and wait for it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def row(self, sampler: Sampler) -> Row:
        raise NotImplementedError

    def rows(self, sampler: Sampler) -> list[Row]:
        """Its rows of the table (most readers have one)."""
        return [self.row(sampler)]

    def base_row(self, sampler: Sampler) -> Row:
        return Row(self.name, sampler.cell(self.name, self.window), mb(self.rss))

    @property
    def seconds(self) -> float:
        return self.window[1] - self.window[0]


def wait_for(
    condition: Callable[[], bool],
    deadline: float,
    what: str,
    alive: Callable[[], None] | None = None,
) -> None:
    """Poll another process's state until ``condition()``; TimeoutError at ``deadline``;
    ``alive()`` raises if that process has ended."""
    while not condition():
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen in time")
        time.sleep(0.1)


def as_int(text: str) -> int:
    """``1,234`` as 1234."""
    return int(text.replace(",", ""))


def metric_sums(text: str) -> dict[str, float]:
    """Each sample name of a Prometheus scrape with its values summed over the labels."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


@dataclass
class Timed:
    """One timed request: when it ended, how long it took (s), how big its answer (bytes)."""

    at: float
    seconds: float
    size: int
