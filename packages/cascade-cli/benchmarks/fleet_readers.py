"""The readers bench_fleet.py runs beside a simulated fleet, each as its own process.

- ``watch --json``: `cascade watch --json --project FLEET` writing to a file;
- ``watch (table)``: `cascade watch`'s live table on a pseudo-terminal;
- ``status --json``: `cascade status --json`, run every few seconds;
- ``dashboard``: `cascade dashboard` with a token, its pages following ``/api/stream`` as the
  page does (its changes, 25 runs and 25 engines; fleet_pages.py): the token holder's on the
  overview, pausing and resuming a task every 2 s (how soon their page shows it), one with
  the busy engine's run open, and with ``--pages`` a crowd of more on the overview; and
  ``GET /api/state`` of a page every second (all of it once, at the window's end);
  ``metrics``: its ``/metrics`` scraped every 2 s (the same process when both are measured);
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
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
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
from fleet_pages import Holder, Page

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
                said = json.loads(out)
                engines = said["engines"]
            except (ValueError, KeyError):
                said, engines = {}, []
                if process.returncode:
                    self.refused = f"exit {process.returncode}: " + first_error(
                        self.err.read_text(errors="replace")
                    )
            online = sum(1 for e in engines if self.context.ours(e["source"])
                         and e["status"] == "online")  # fmt: skip
            if said.get("engines_listed", 0) < said.get("engines_matching", 0):
                online = said["fleet"]["online"]  # a fleet's: the engines listed are a part
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


CROWD = "the crowd of pages"  # the sampler's name for their process
TOKEN = "bench-holder-token"  # the dashboard's --token, held by the holder's page


@dataclass
class Mark:
    """The dashboard's state at a window's edge, and what its pages had got by then (bytes,
    updates), the crowd's bytes, the latest /metrics scrape."""

    state: dict[str, Any]
    holder: tuple[int, int]
    busy: tuple[int, int]
    crowd: int
    metrics: tuple[float, str]


def start_crowd(url: str, count: int) -> subprocess.Popen[str]:
    """The crowd's process (fleet_pages.crowd), once each of its pages has had an update."""
    script = Path(__file__).with_name("fleet_pages.py")
    crowd = subprocess.Popen(
        [sys.executable, str(script), url, str(count)], stdout=subprocess.PIPE, text=True
    )
    assert crowd.stdout is not None
    if crowd.stdout.readline().strip() != "ready":
        crowd.kill()
        raise ReaderFailed(f"the crowd of {count} pages did not get going")
    return crowd


def crowd_bytes(crowd: subprocess.Popen[str] | None) -> int:
    """What the crowd's pages have got so far (it says when sent SIGUSR1); ReaderFailed if
    it has ended (a page failed: it said why on its stderr), not a figure of nothing."""
    if crowd is None or crowd.stdout is None:
        return 0
    if crowd.poll() is None:
        crowd.send_signal(signal.SIGUSR1)
        said = crowd.stdout.readline().strip()
        if said.isdigit():
            return int(said)
    raise ReaderFailed(f"the crowd of pages ended (exit {crowd.poll()}); its stderr says why")


def _said(error: str) -> str:
    return f"; its stream ended: {error}" if error else ""


class Dashboard(Reader):
    """`cascade dashboard` (with a token): with ``page``, the token holder's page on the
    overview, pausing and resuming a task of their own every few seconds (fleet_pages.Holder),
    a page with the busy run open (``busy``: the busy engine's project), ``pages`` pages in all
    (the rest, on the overview, in a process of their own), and ``GET /api/state`` of a page
    every STATE_EVERY s; with ``scrape``, ``/metrics`` scraped every METRICS_EVERY s. Rows:
    the dashboard's, each page's, the metrics' (which has the process's CPU when no page is
    measured)."""

    name = "dashboard"
    fleet_view = True

    def __init__(
        self,
        context: Context,
        page: bool,
        scrape: bool,
        pages: int = 1,
        busy: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(context)
        self.page, self.scrape, self.pages, self.busy = page, scrape, pages, busy
        self.env = env
        """Its process's environment (``None``: this one's); a baseline's puts its code first."""
        self.states: list[Timed] = []
        self.scrapes: list[Timed] = []
        self.latest_metrics = (0.0, "")
        self.holder: Holder | None = None
        self.busy_page: Page | None = None
        self.crowd: subprocess.Popen[str] | None = None
        self.marks: list[Mark] = []
        self.restarted_at = 0.0
        self._stop = threading.Event()

    def start(self) -> None:
        process = subprocess.Popen(
            [*self.context.view("dashboard"), "--listen", "127.0.0.1:0",
             "--token", f"holder={TOKEN}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
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

    def _state(self, params: dict[str, str] | None = None) -> dict[str, Any]:
        """The dashboard's ``/api/state``, and its size in bytes as ``"bytes"``."""
        answer = self.http.get("api/state", params=params)
        state: dict[str, Any] = answer.json()
        state["bytes"] = len(answer.content)
        return state

    def wait_ready(self, deadline: float) -> None:
        def has_fleet() -> bool:  # engines a page at a time: the count says
            return int(self._state()["engines_total"]) >= self.context.engines

        wait_for(has_fleet, deadline, "the dashboard listing every engine", self.alive)
        if self.page:
            self.holder = Holder(self.url, TOKEN)
            threading.Thread(target=self._poll_state, daemon=True).start()
            if self.busy:
                self.busy_page = Page(self.url, self._busy_run(deadline))
            crowd = self.pages - 1 - (self.busy_page is not None)
            if crowd > 0:
                self.crowd = start_crowd(self.url, crowd)
        if self.scrape:
            threading.Thread(target=self._poll_metrics, daemon=True).start()

    def _busy_run(self, deadline: float) -> str:
        """The busy engine's run, as the dashboard lists it."""
        runs: list[dict[str, Any]] = []

        def listed() -> bool:
            runs[:] = self._state({"project": self.busy, "limit": "1"})["runs"]
            return bool(runs)

        wait_for(listed, deadline, "the dashboard listing the busy run", self.alive)
        return str(runs[0]["run_id"])

    def _timed(
        self,
        path: str,
        into: list[Timed],
        every: float,
        stop: threading.Event,
        params: dict[str, str] | None = None,
    ) -> str:
        began = time.perf_counter()
        answer = self.http.get(path, params=params)
        took = time.perf_counter() - began
        into.append(Timed(time.monotonic(), took, len(answer.content)))
        stop.wait(max(0.0, every - took))
        return answer.text

    def _poll_state(self) -> None:
        stop = self._stop  # its own: a restart gives the next poll another
        with contextlib.suppress(httpx.HTTPError):
            while not stop.is_set():
                self._timed("api/state", self.states, STATE_EVERY, stop, PAGE)

    def _poll_metrics(self) -> None:
        stop = self._stop
        with contextlib.suppress(httpx.HTTPError):
            while not stop.is_set():
                text = self._timed("metrics", self.scrapes, METRICS_EVERY, stop)
                self.latest_metrics = (time.monotonic(), text)

    def mark(self, end: bool) -> None:
        began = time.perf_counter()
        state = self._state()  # the window's edge is its answer (a busy dashboard is slow)
        state["answered_at"] = time.time()
        state["took_ms"] = (time.perf_counter() - began) * 1000
        super().mark(end)
        holder = self.holder.page.counts() if self.holder is not None else (0, 0)
        busy = self.busy_page.counts() if self.busy_page is not None else (0, 0)
        self.marks.append(Mark(state, holder, busy, crowd_bytes(self.crowd), self.latest_metrics))

    def restart(self) -> None:
        """End it as Ctrl-C does (its pages and polls too) and start it again, on a new
        address: :meth:`wait_ready` then opens its pages and polls again. ``restarted_at``
        (monotonic): when the old one had ended and the new one was started."""
        self.stop()
        self.holder = self.busy_page = self.crowd = None
        self._stop = threading.Event()
        self.restarted_at = time.monotonic()
        self.start()

    def stop(self) -> None:
        self._stop.set()
        for page in (self.holder, self.busy_page):
            if page is not None:
                page.stop()
        if self.crowd is not None:
            self.crowd.terminate()
            self.crowd.wait(STOP_TIMEOUT)
        super().stop()

    def helpers(self) -> dict[str, list[int]]:
        return {CROWD: [self.crowd.pid]} if self.crowd is not None else {}

    def rows(self, sampler: Sampler) -> list[Row]:
        first, last = self.marks
        rows = []
        if self.page:
            rows.append(self._dashboard_row(sampler, first, last))
            rows += self._page_rows(sampler, first, last)
        if self.scrape:
            rows.append(self._metrics_row(sampler, first.metrics, last.metrics))
        return rows

    def _dashboard_row(self, sampler: Sampler, first: Mark, last: Mark) -> Row:
        row = self.base_row(sampler)
        earlier, later = first.state, last.state
        received = later["connection"]["received"] - earlier["connection"]["received"]
        row.takes = f"{received / self.seconds:,.0f} msg"
        missed = later.get("missed_total")  # the missed list names the worst few sources
        row.missed = (
            f"{missed['events']:,}" if missed is not None else
            f"{sum(m['events'] for m in later['missed'] if self.context.ours(m['source'])):,}"
        )  # fmt: skip
        heard = [e["last_seen"] or 0.0 for e in later["engines"] if self.context.ours(e["source"])]
        row.lag = f"{later['answered_at'] - max(heard, default=0.0):.1f}"
        states = [t for t in self.states if self.window[0] <= t.at <= self.window[1]]
        latency, latency95 = median_p95([t.seconds * 1000 for t in states])
        big, big95 = median_p95([t.size for t in states])
        row.figures = (
            f"{self.cost(received, 'message')}, serving included ({self.pages} pages); "
            f"/api/state a page: {size(big)} (p95 {size(big95)}), {latency:.0f} ms (p95 "
            f"{latency95:.0f}; {len(states)} requests), all of it at the end: "
            f"{later['took_ms']:.0f} ms; lists {len(later['engines']):,} engines, "
            f"{len(later['runs']):,} of {later['runs_total']:,} runs"
        )
        return row

    def _page_rows(self, sampler: Sampler, first: Mark, last: Mark) -> list[Row]:
        """A row for the holder's page, the busy run's and the crowd's."""
        assert self.holder is not None
        rows = []
        window = self.window

        def rate(before: int, after: int) -> str:
            return f"{(after - before) / self.seconds / 1e3:,.1f} kB/s"

        shown = self.holder.in_window(window)
        took, took95 = median_p95(shown)
        refused = f"; refused: {self.holder.refused[0]}" if self.holder.refused else ""
        rows.append(Row(
            "  page: the token holder's, overview",
            takes=rate(first.holder[0], last.holder[0]),
            figures=f"{(last.holder[1] - first.holder[1]) / self.seconds:.1f} updates/s, at "
            f"most {self.holder.page.longest_wait(window):.2f} s apart, silent at most "
            f"{self.holder.page.longest_silence(window):.2f} s; their pause or resume "
            f"on their page in {took:.2f} s (p95 {took95:.2f}, slowest {max(shown, default=0):.2f};"
            f" {len(shown)} controls){refused}{_said(self.holder.page.error)}",
        ))  # fmt: skip
        if self.busy_page is not None:
            rows.append(Row(
                "  page: the busy run open",
                takes=rate(first.busy[0], last.busy[0]),
                figures=f"{(last.busy[1] - first.busy[1]) / self.seconds:.1f} updates/s, at most "
                f"{self.busy_page.longest_wait(window):.2f} s apart{_said(self.busy_page.error)}",
            ))  # fmt: skip
        if self.crowd is not None:
            count = self.pages - 1 - (self.busy_page is not None)
            rows.append(Row(
                f"  pages: {count} more on the overview",
                sampler.cell(CROWD, window),
                takes=rate(first.crowd, last.crowd),
                figures=f"{(last.crowd - first.crowd) / self.seconds / count / 1e3:,.1f} kB/s a "
                "page; in a process of their own, from several addresses",
            ))  # fmt: skip
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
