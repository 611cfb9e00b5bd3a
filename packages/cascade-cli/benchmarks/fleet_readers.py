"""The readers bench_fleet.py runs beside a simulated fleet, each as its own process.

- ``watch --json``: `cascade watch --json --project FLEET` writing to a file;
- ``watch (table)``: `cascade watch`'s live table on a pseudo-terminal;
- ``status --json``: `cascade status --json`, run every few seconds;
- ``dashboard``: `cascade dashboard` with one page following ``/api/stream`` as the page does
  (its changes, 25 runs and 25 engines) and ``GET /api/state`` of a page every second (all of
  it once, at the window's end); ``metrics``: its ``/metrics`` scraped every 2 s (the same
  process when both are measured);
- ``record``: `cascade record` into a SQLite file.

In fleet mode (``Context.fleet_mode``) watch and the dashboard are given
``--fleet-threshold 0`` (they read the engines' summaries, not every event) and watch no
``--project`` (a run filter would keep it out of that mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import sqlite3
import statistics
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
from fleet_measure import (
    STOP_TIMEOUT,
    Context,
    Reader,
    ReaderFailed,
    Row,
    Sampler,
    Timed,
    as_int,
    first_error,
    lag_after,
    mb,
    median_p95,
    metric_sums,
    percent,
    size,
    wait_for,
)

STATUS_EVERY = 5.0  # seconds between two `cascade status --json`
STATE_EVERY = 1.0  # seconds between two GET /api/state
PAGE = {"limit": "25", "engines_limit": "25"}  # the rows the page asks for, as it does
METRICS_EVERY = 2.0  # seconds between two scrapes of /metrics
MISSED = re.compile(r"missed ([\d,]+) events from")
_TS = re.compile(rb'"ts":"([^"]+)"')
_EVENT_LINE = b'/events", "retain": '  # how a line of --json about an event begins
_SUMMARY_LINE = b"/summary/"  # in a line of --json about an engine's summary
_SUMMARY = re.compile(
    r"([\d,]+) received, ([\d,]+) stored, [\d,]+ duplicates, ([\d,]+) rejected, "
    r"([\d,]+) refused, ([\d,]+) dropped, ([\d,]+) missed"
)


class WatchJson(Reader):
    """`cascade watch --json --project FLEET` writing to a file; what it says it missed is on
    its stderr at its end."""

    name = "watch --json"
    fleet_view = True

    def start(self) -> None:
        self.out = self.context.folder / "watch.jsonl"
        self.err = self.context.folder / "watch.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            only = () if self.context.fleet_mode else ("--project", self.context.fleet)
            command = self.context.view("watch", "--json", *only)
            self.process = subprocess.Popen(command, stdout=out, stderr=err)
        self.offsets = (0, 0)
        self.last_ts: str | None = None

    def error_output(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        births = f"/status/{self.context.fleet}-".encode()
        wait_for(lambda: births in self.out.read_bytes()[:1_000_000], deadline, self.name,
                 self.alive)  # fmt: skip

    def mark(self, end: bool) -> None:
        super().mark(end)
        size = self.out.stat().st_size
        self.offsets = (self.offsets[0], size) if end else (size, size)
        if end:
            with self.out.open("rb") as file:
                file.seek(max(0, size - 65_536))
                stamps = _TS.findall(file.read())
            self.last_ts = stamps[-1].decode() if stamps else None
            self.wall = time.time()

    def row(self, sampler: Sampler) -> Row:
        row = self.base_row(sampler)
        with self.out.open("rb") as file:
            file.seek(self.offsets[0])
            chunk = file.read(self.offsets[1] - self.offsets[0])
        events = chunk.count(_EVENT_LINE)  # one line an event
        row.takes = f"{events / self.seconds:,.0f} ev"
        summaries = chunk.count(_SUMMARY_LINE)
        if summaries:
            row.takes += f" + {summaries / self.seconds:,.0f} sum"
        said = MISSED.findall(self.error_output())
        row.missed = f"{sum(int(n.replace(',', '')) for n in said):,}"
        row.lag = lag_after(self.last_ts, self.wall)
        row.figures = (
            f"{self.cost(events, 'event')}; writes {len(chunk) / self.seconds / 1e6:.1f} MB/s"
        )
        return row


class WatchTable(Reader):
    """`cascade watch`'s live table on a pseudo-terminal; what it missed from its footer."""

    name = "watch (table)"
    fleet_view = True

    def start(self) -> None:
        primary, secondary = pty.openpty()
        env = {**os.environ, "COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
        self.process = subprocess.Popen(self.context.view("watch"), stdin=secondary,
                                        stdout=secondary, stderr=secondary, env=env)  # fmt: skip
        os.close(secondary)
        self.screen: deque[bytes] = deque(maxlen=64)  # the last chunks: the latest footer
        self.written = 0
        self.counts = (0, 0)
        threading.Thread(target=self._drain, args=(primary,), daemon=True).start()

    def _drain(self, primary: int) -> None:
        while True:
            try:
                chunk = os.read(primary, 65_536)
            except OSError:
                break
            if not chunk:
                break
            self.screen.append(chunk)
            self.written += len(chunk)
        os.close(primary)

    def error_output(self) -> str:
        return b"".join(self.screen).decode(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        wait_for(lambda: self.context.fleet.encode() in b"".join(self.screen), deadline, self.name,
                 self.alive)  # fmt: skip

    def mark(self, end: bool) -> None:
        super().mark(end)
        self.counts = (self.counts[0], self.written) if end else (self.written, self.written)

    def row(self, sampler: Sampler) -> Row:
        row = self.base_row(sampler)
        screen = re.sub(
            r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(self.screen).decode(errors="replace")
        )
        said = MISSED.findall(screen)
        row.missed = said[-1] if said else "0"
        rate = (self.counts[1] - self.counts[0]) / self.seconds / 1e3
        row.figures = f"draws {rate:,.0f} kB/s on a 160x60 terminal, 4 times a second"
        return row


@dataclass
class Poll:
    """One `cascade status --json`: when it began, its wall and CPU seconds, peak RSS."""

    began: float
    wall: float
    cpu: float
    max_rss_mb: float
    size: int
    online: int


class StatusPoll(Reader):
    """`cascade status --json` run every STATUS_EVERY seconds, as a script or a check would."""

    name = f"status --json (every {STATUS_EVERY:g} s)"  # it reads summaries, never telemetry

    def start(self) -> None:
        self.polls: list[Poll] = []
        self.refused: str | None = None  # why a call ended in error, output no JSON
        self.err = self.context.folder / "status.err"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def pids(self) -> list[int]:
        return []  # short-lived: measured by os.wait4 each

    def wait_ready(self, deadline: float) -> None:
        """Return once a first call has answered; :class:`ReaderFailed` if it refused."""
        wait_for(lambda: bool(self.polls), deadline, self.name)
        if self.refused is not None and not any(poll.online for poll in self.polls):
            self.stop()
            raise ReaderFailed(self.refused)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            command = self.context.cli("status", "--json")
            with self.err.open("wb") as err:
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
            assert process.stdout is not None
            out = process.stdout.read()
            process.stdout.close()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            wall = time.monotonic() - began
            try:
                engines = json.loads(out)["engines"]
            except (ValueError, KeyError):
                engines = []
                if process.returncode:
                    self.refused = f"exit {process.returncode}: " + first_error(
                        self.err.read_text(errors="replace")
                    )
            online = sum(1 for e in engines if self.context.ours(e["source"])
                         and e["status"] == "online")  # fmt: skip
            cpu = usage.ru_utime + usage.ru_stime
            self.polls.append(Poll(began, wall, cpu, usage.ru_maxrss / 1024, len(out), online))
            self._stop.wait(max(0.0, STATUS_EVERY - wall))

    def stop(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
            self._thread.join(STOP_TIMEOUT)

    def row(self, sampler: Sampler) -> Row:
        polls = [p for p in self.polls if self.window[0] <= p.began <= self.window[1]]
        row = Row(self.name)
        if not polls:
            row.figures = "no call began in the window"
            return row
        wall, wall95 = median_p95([p.wall for p in polls])
        row.cpu = f"{percent(sum(p.cpu for p in polls) / self.seconds)} (mean)"
        row.rss = f"{mb(statistics.median(p.max_rss_mb for p in polls))} (peak)"
        row.figures = (
            f"{len(polls)} call{'s' if len(polls) != 1 else ''}: {wall:.2f} s each "
            f"(p95 {wall95:.2f}), "
            f"{statistics.median(p.cpu for p in polls):.2f} CPU s each, "
            f"{polls[-1].online:,} of {self.context.engines:,} engines online, "
            f"{size(polls[-1].size)} of JSON"
        )
        return row


class Dashboard(Reader):
    """`cascade dashboard`: with ``page``, one page following ``/api/stream`` (as a browser
    that opened it, no run selected) and ``GET /api/state`` of a page every STATE_EVERY s; with
    ``scrape``, ``/metrics`` scraped every METRICS_EVERY s. Two rows: the dashboard's, the
    metrics' (which has the process's CPU when no page is measured)."""

    name = "dashboard"
    fleet_view = True

    def __init__(self, context: Context, page: bool, scrape: bool) -> None:
        super().__init__(context)
        self.page, self.scrape = page, scrape
        self.states: list[Timed] = []
        self.scrapes: list[Timed] = []
        self.latest_metrics = (0.0, "")
        self.streamed = self.frames = 0
        self.marks: list[tuple[dict[str, Any], int, int, tuple[float, str]]] = []
        self._stop = threading.Event()

    def start(self) -> None:
        process = subprocess.Popen(
            [*self.context.view("dashboard"), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.process = process
        assert process.stdout is not None
        said = []
        for line in process.stdout:
            found = re.search(r"cascade dashboard on (http://\S+/)", line)
            if found:
                self.url = found.group(1)
                break
            said.append(line)
        else:
            process.wait()
            why = first_error("".join(said)) or "no word of why"
            raise ReaderFailed(f"ended (exit {process.returncode}) before it was ready: {why}")
        threading.Thread(target=process.stdout.read, daemon=True).start()
        self.http = httpx.Client(base_url=self.url, timeout=120)

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get("api/state").json()
        return state

    def wait_ready(self, deadline: float) -> None:
        def has_fleet() -> bool:
            state = self._state()
            if state.get("mode") == "fleet":  # engines a page at a time: the count says
                return int(state["engines_total"]) >= self.context.engines
            ours = [e for e in state["engines"] if self.context.ours(e["source"])]
            return len(ours) >= self.context.engines

        wait_for(has_fleet, deadline, "the dashboard listing every engine", self.alive)
        jobs = [self._follow] if self.page else []
        jobs += [self._poll_state] if self.page else []
        jobs += [self._poll_metrics] if self.scrape else []
        for job in jobs:
            threading.Thread(target=job, daemon=True).start()

    def _follow(self) -> None:
        with (
            httpx.Client(base_url=self.url, timeout=None) as client,
            client.stream("GET", "api/stream", params={"since": "0", **PAGE}) as stream,
        ):
            for chunk in stream.iter_raw():
                self.streamed += len(chunk)
                self.frames += chunk.count(b"event: delta") + chunk.count(b"event: snapshot")
                if self._stop.is_set():
                    return

    def _timed(
        self, path: str, into: list[Timed], every: float, params: dict[str, str] | None = None
    ) -> str:
        began = time.perf_counter()
        answer = self.http.get(path, params=params)
        took = time.perf_counter() - began
        into.append(Timed(time.monotonic(), took, len(answer.content)))
        self._stop.wait(max(0.0, every - took))
        return answer.text

    def _poll_state(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            while not self._stop.is_set():
                self._timed("api/state", self.states, STATE_EVERY, PAGE)

    def _poll_metrics(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            while not self._stop.is_set():
                text = self._timed("metrics", self.scrapes, METRICS_EVERY)
                self.latest_metrics = (time.monotonic(), text)

    def mark(self, end: bool) -> None:
        began = time.perf_counter()
        state = self._state()  # the window's edge is its answer (a busy dashboard is slow)
        state["answered_at"] = time.time()
        state["took_ms"] = (time.perf_counter() - began) * 1000
        super().mark(end)
        self.marks.append((state, self.streamed, self.frames, self.latest_metrics))

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    def rows(self, sampler: Sampler) -> list[Row]:
        (first, streamed0, frames0, metrics0), (last, streamed1, frames1, metrics1) = self.marks
        rows = []
        if self.page:
            row = self.base_row(sampler)
            received = last["connection"]["received"] - first["connection"]["received"]
            row.takes = f"{received / self.seconds:,.0f} msg"
            row.missed = (
                f"{sum(m['events'] for m in last['missed'] if self.context.ours(m['source'])):,}"
            )
            heard = [
                e["last_seen"] or 0.0 for e in last["engines"] if self.context.ours(e["source"])
            ]
            row.lag = f"{last['answered_at'] - max(heard, default=0.0):.1f}"
            states = [t for t in self.states if self.window[0] <= t.at <= self.window[1]]
            latency, latency95 = median_p95([t.seconds * 1000 for t in states])
            big, big95 = median_p95([t.size for t in states])
            row.figures = (
                f"{self.cost(received, 'message')}, serving included; "
                f"/api/state a page: {size(big)} (p95 {size(big95)}), {latency:.0f} ms (p95 "
                f"{latency95:.0f}; {len(states)} requests), all of it at the end: "
                f"{last['took_ms']:.0f} ms; a page's /api/stream "
                f"{(streamed1 - streamed0) / self.seconds / 1e3:,.0f} kB/s, "
                f"{(frames1 - frames0) / self.seconds:.1f} updates/s; lists "
                f"{len(last['engines']):,} engines, {len(last['runs']):,} of "
                f"{last['runs_total']:,} runs"
            )
            rows.append(row)
        if self.scrape:
            rows.append(self._metrics_row(sampler, metrics0, metrics1))
        return rows

    def _metrics_row(
        self, sampler: Sampler, first: tuple[float, str], last: tuple[float, str]
    ) -> Row:
        row = Row("metrics (/metrics)", cpu="(dashboard's)", rss="(dashboard's)")
        if not self.page:
            row = self.base_row(sampler)
            row.name = "metrics (a dashboard, /metrics only)"
        scrapes = [t for t in self.scrapes if self.window[0] <= t.at <= self.window[1]]
        if not scrapes or not first[1]:
            row.figures = "no scrape in the window"
            return row
        before, after = metric_sums(first[1]), metric_sums(last[1])
        ended = after.get("cascade_tasks_total", 0.0) - before.get("cascade_tasks_total", 0.0)
        row.missed = f"{after.get('cascade_missed_events', 0.0):,.0f}"
        latency, latency95 = median_p95([t.seconds * 1000 for t in scrapes])
        row.figures = (
            f"{size(statistics.median(t.size for t in scrapes))} a scrape, "
            f"{latency:.0f} ms (p95 {latency95:.0f}; {len(scrapes)} scrapes); "
            f"{after.get('cascade_engines_online', 0.0):,.0f} engines online; "
            f"{ended / (last[0] - first[0]):,.0f} tasks ended/s"
        )
        return row


class Record(Reader):
    """`cascade record` into a SQLite file; what it stored counted in the file itself."""

    name = "record (SQLite)"

    def start(self) -> None:
        self.db = self.context.folder / "history.sqlite3"
        self.err = self.context.folder / "record.err"
        with self.err.open("wb") as err:
            process = subprocess.Popen(
                self.context.cli("record", "--db", f"sqlite:///{self.db}"),
                stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        self.process = process
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith("recording "):
            raise RuntimeError(first + self.err.read_text(errors="replace"))
        self.said: list[str] = []
        threading.Thread(target=lambda: self.said.extend(process.stdout or ()), daemon=True).start()
        self.marks: list[tuple[int, float | None, float]] = []

    def _stored(self) -> tuple[int, float | None]:
        """Events stored (their rows' highest ids: no row is deleted), the latest task's time."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as db:
            stored = sum(
                db.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
                for table in ("task_events", "run_events")
            )
            latest = db.execute("SELECT max(ts) FROM task_events").fetchone()[0]
        return stored, latest

    def mark(self, end: bool) -> None:
        super().mark(end)
        stored, latest = self._stored()
        self.marks.append((stored, latest, time.time()))

    def row(self, sampler: Sampler) -> Row:
        row = self.base_row(sampler)
        (stored0, _, _), (stored1, latest, wall) = self.marks
        stored = stored1 - stored0
        row.takes = f"{stored / self.seconds:,.0f} stored"
        if latest is not None:
            row.lag = f"{max(0.0, wall - latest):.1f}"
        summary = next((line for line in reversed(self.said) if "recorded into" in line), "")
        found = _SUMMARY.search(summary)
        if found is None:
            row.figures = "no summary at its end"
            return row
        received, _, rejected, refused, dropped, missed = map(as_int, found.groups())
        row.missed = f"{missed:,}"
        row.figures = (
            f"{self.cost(stored, 'event stored')}; at its end: "
            f"{received:,} received, {dropped:,} dropped, {rejected:,} rejected, "
            f"{refused:,} refused"
        )
        return row


READERS: dict[str, type[Reader]] = {
    "watch": WatchJson,
    "watch-table": WatchTable,
    "status": StatusPoll,
    "record": Record,
}
"""The readers by the name --readers gives them (``dashboard`` and ``metrics``: Dashboard)."""
