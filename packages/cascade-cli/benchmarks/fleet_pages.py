"""The dashboard's pages in bench_fleet.py: the token holder's, a busy run's, and a crowd.

- :class:`Page`: one page following ``/api/stream`` as the page asks for it (its changes, 25
  runs and 25 engines; a run opened, if any; gzip taken, as browsers take it), in a thread:
  the bytes it got (as sent, compressed) and its updates, the
  longest wait between two updates and between two events of any kind (its silence: a
  keep-alive tick counts), and when a text first reached it (:meth:`Page.expect`).
- :class:`Holder`: the token holder's page on the overview, who pauses a task of their own
  (``task:bench_probe_NNNNN``) every PROBE_EVERY s through ``POST /api/constraints`` and
  resumes it: the seconds from each request to the change shown on their page.
- The crowd: ``python fleet_pages.py URL COUNT``, a process of its own holding COUNT more
  pages on the overview (from 127.0.0.2 on, at most PER_ADDRESS each: the dashboard's limit
  per address without the token), like the people who watch; it prints ``ready`` once every
  page has had its first update, then the bytes they got so far each time it gets SIGUSR1,
  until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx

PAGE = {"since": "0", "limit": "25", "engines_limit": "25"}  # as the page asks for them
PER_ADDRESS = 8  # streams the dashboard allows from one address without the token
PROBE_EVERY = 2.0  # seconds between two of the holder's controls
SHOWN_WITHIN = 10.0  # a control not on the page after this long counts as never shown
UPDATE = (b"event: delta", b"event: snapshot", b"event: state")
EVENT = b"event: "  # any event, the keep-alive tick included


def unpacker(headers: httpx.Headers) -> Callable[[bytes], bytes]:
    """What a stream's bytes say, as they come: gunzipped when the dashboard gzips them (a
    page takes gzip, as browsers do and httpx says it does)."""
    if headers.get("content-encoding") != "gzip":
        return lambda raw: raw
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress


class Page:
    """One page's stream, read in a thread until :meth:`stop`."""

    def __init__(
        self, url: str, run_id: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.url, self.headers = url, headers or {}
        self.params = {**PAGE, **({"run": run_id} if run_id else {})}
        self.streamed = self.updates = 0
        self.updated_at: list[float] = []  # monotonic, each chunk that brought an update
        self.heard_at: list[float] = []  # monotonic, each chunk that brought an event
        self._expected: dict[bytes, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.error = ""
        threading.Thread(target=self._follow, daemon=True).start()

    def expect(self, text: bytes) -> threading.Event:
        """An event set once ``text`` reaches the page (after this call)."""
        seen = threading.Event()
        with self._lock:
            self._expected[text] = seen
        return seen

    def counts(self) -> tuple[int, int]:
        """The bytes and updates so far."""
        return self.streamed, self.updates

    def longest_wait(self, window: tuple[float, float]) -> float:
        """The longest time in ``window`` the page went without an update."""
        return _longest_gap(self.updated_at, window)

    def longest_silence(self, window: tuple[float, float]) -> float:
        """The longest time in ``window`` the stream sent nothing (a tick ends a silence)."""
        return _longest_gap(self.heard_at, window)

    def stop(self) -> None:
        self._stop.set()

    def _follow(self) -> None:
        tail = b""
        try:
            with (
                httpx.Client(base_url=self.url, timeout=None, headers=self.headers) as client,
                client.stream("GET", "api/stream", params=self.params) as stream,
            ):
                unpack = unpacker(stream.headers)
                for raw in stream.iter_raw():  # counted as sent (gzip), read as unpacked
                    self.streamed += len(raw)
                    chunk = unpack(raw)
                    found = sum(chunk.count(kind) for kind in UPDATE)
                    if found:
                        self.updates += found
                        self.updated_at.append(time.monotonic())
                    if EVENT in chunk:
                        self.heard_at.append(time.monotonic())
                    seen, tail = tail + chunk, chunk[-64:]  # a text cut between two chunks
                    with self._lock:
                        for text in [t for t in self._expected if t in seen]:
                            self._expected.pop(text).set()
                    if self._stop.is_set():
                        return
        except httpx.HTTPError as error:
            self.error = f"{type(error).__name__}: {error}"


def _longest_gap(times: list[float], window: tuple[float, float]) -> float:
    inside = [window[0], *(t for t in times if window[0] < t < window[1]), window[1]]
    return max(later - earlier for earlier, later in itertools.pairwise(inside))


class Holder:
    """The token holder: their page on the overview, and a pause and a resume every
    PROBE_EVERY s, each timed from the request to the change on their page."""

    def __init__(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        self.page = Page(url, headers=headers)
        self.http = httpx.Client(base_url=url, timeout=60, headers=headers)
        self.shown: list[tuple[float, float]] = []  # (when asked, seconds until on the page)
        self.refused: list[str] = []
        self._stop = threading.Event()
        threading.Thread(target=self._steer, daemon=True).start()

    def in_window(self, window: tuple[float, float]) -> list[float]:
        """The seconds each control asked in ``window`` took to reach the page (inf: never)."""
        return [took for at, took in self.shown if window[0] <= at <= window[1]]

    def stop(self) -> None:
        self._stop.set()
        self.page.stop()

    def _steer(self) -> None:
        probe = 0
        while not self._stop.wait(PROBE_EVERY):
            probe += 1
            name = f"bench_probe_{probe:05d}"
            scope = f"task:{name}"
            self._timed(name, "POST", {"json": {"scope": scope, "type": "pause"}})
            self._timed(name, "DELETE", {"params": {"scope": scope}})

    def _timed(self, name: str, method: str, request: dict[str, Any]) -> None:
        seen = self.page.expect(name.encode())
        asked = time.monotonic()
        try:
            answer = self.http.request(method, "api/constraints", **request)
        except httpx.HTTPError as error:
            self.refused.append(f"{method}: {type(error).__name__}")
            return
        if answer.status_code != 200:
            self.refused.append(f"{method}: {answer.status_code} {answer.text[:100]}")
            return
        shown = seen.wait(SHOWN_WITHIN)
        self.shown.append((asked, time.monotonic() - asked if shown else math.inf))


def failed(page: asyncio.Task[None]) -> None:
    """A page that failed ends the crowd (which says why): no ``ready`` is ever said."""
    if not page.cancelled() and page.exception() is not None:
        print(f"fleet_pages: a page failed: {page.exception()!r}", file=sys.stderr, flush=True)
        os._exit(1)


def crowd(url: str, count: int) -> None:
    """The crowd's process: ``count`` pages on the overview until SIGTERM (see the module)."""

    async def page(n: int, ready: asyncio.Queue[int], got: list[int]) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n // PER_ADDRESS}")
        async with (
            httpx.AsyncClient(base_url=url, transport=transport, timeout=None) as http,
            http.stream("GET", "api/stream", params=PAGE) as response,
        ):
            if response.status_code != 200:
                raise SystemExit(f"page {n}: {response.status_code} {await response.aread()!r}")
            first, unpack = True, unpacker(response.headers)
            async for chunk in response.aiter_raw():
                got[n] += len(chunk)
                said = unpack(chunk)  # every chunk: the stream unpacks as one
                if first and any(kind in said for kind in UPDATE):
                    first = False
                    ready.put_nowait(n)

    async def pages() -> None:
        ready: asyncio.Queue[int] = asyncio.Queue()
        got = [0] * count
        jobs = [asyncio.create_task(page(n, ready, got)) for n in range(count)]
        for job in jobs:
            job.add_done_callback(failed)
        ended = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, ended.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: print(sum(got), flush=True))
        for _ in range(count):
            await ready.get()
        print("ready", flush=True)
        await ended.wait()
        for job in jobs:
            job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*jobs)

    asyncio.run(pages())


if __name__ == "__main__":
    crowd(sys.argv[1], int(sys.argv[2]))
