"""The live streams over a real socket: who may open one, and one state built for all of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.live import Snapshots
from cascade.interfaces import StatusMessage, status_topic
from cascade.metrics import bind
from cascade.runtime import Engine, task

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@task
async def double(n: int) -> int:
    """A quick task."""
    return n * 2


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port; yields its base URL."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task_ = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task_
        sock.close()


def from_address(base: str, address: str, **headers: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=10, headers=headers)


class Stream:
    """One open ``/api/stream``, read event by event."""

    def __init__(self, http: httpx.AsyncClient, params: dict[str, str] | None = None) -> None:
        self.http = http
        self.params = params or {}
        self.stack = contextlib.AsyncExitStack()
        self.response: httpx.Response

    async def open(self) -> httpx.Response:
        self.response = await self.stack.enter_async_context(
            self.http.stream("GET", "/api/stream", params=self.params)
        )
        self.lines = self.response.aiter_lines()
        return self.response

    async def next(self, kind: str = "state") -> dict[str, Any]:
        """The data of the next event of ``kind``."""
        event = ""
        async for line in self.lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == kind:
                data: dict[str, Any] = json.loads(line[6:])
                return data
        raise EOFError("the stream ended")

    async def ended(self) -> bool:
        """Read to the end of the stream; True once it ends."""
        async for _ in self.lines:
            pass
        return True

    async def close(self) -> None:
        await self.stack.aclose()


async def open_streams(
    http: httpx.AsyncClient, count: int, kind: str = "state", **params: str
) -> list[Stream]:
    """``count`` streams of ``params``, each once its first event (of ``kind``) came."""
    streams = [Stream(http, params) for _ in range(count)]
    for stream in streams:
        assert (await stream.open()).status_code == 200
        await stream.next(kind)
    return streams


def count_run_details(hub: DashboardHub, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the model's run-detail builds from now on: ``[n]``, updated as they happen."""
    builds = [0]
    run_detail: Callable[[str], Any] = hub.model.run_detail

    def counting(run: str) -> Any:
        builds[0] += 1
        return run_detail(run)

    monkeypatch.setattr(hub.model, "run_detail", counting)
    return builds


async def test_one_address_gets_a_few_streams_others_still_get_theirs(hub: DashboardHub) -> None:
    """Past the per-address limit: 429 (its own excess) with Retry-After; another address
    still streams."""
    app = create_app(hub, DashboardSettings(token=TOKEN, max_streams=10, max_streams_per_client=2))
    async with (
        serving(app) as base,
        from_address(base, "127.0.0.2") as greedy,
        from_address(base, "127.0.0.3") as other,
    ):
        held = await open_streams(greedy, 2)
        refused = await greedy.get("/api/stream")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        assert "from 127.0.0.2 (at most 2)" in refused.json()["error"]
        (fine,) = await open_streams(other, 1)
        for stream in [*held, fine]:
            await stream.close()
        (again,) = await open_streams(greedy, 1)  # a closed stream gives its slot back
        await again.close()


async def test_the_total_limit_never_locks_out_the_token_holder(hub: DashboardHub) -> None:
    """All anonymous slots taken from many addresses: a page with the token still streams."""
    app = create_app(hub, DashboardSettings(token=TOKEN, max_streams=3))
    async with serving(app) as base:
        clients = [from_address(base, f"127.0.0.{n}") for n in (2, 3, 4, 5)]
        holder = from_address(base, "127.0.0.2", **AUTH)
        wrong = from_address(base, "127.0.0.6", Authorization="Bearer wrong")
        try:
            held = [s for http in clients[:3] for s in await open_streams(http, 1)]
            late = await clients[3].get("/api/stream")
            assert late.status_code == 503
            assert "at most 3" in late.json()["error"]
            assert (await wrong.get("/api/stream")).status_code == 503
            (page,) = await open_streams(holder, 1)
            for stream in [*held, page]:
                await stream.close()
        finally:
            for http in [*clients, holder, wrong]:
                await http.aclose()


async def test_a_full_holder_pool_takes_from_the_shared_one_and_ends_nobody(
    hub: DashboardHub,
) -> None:
    """The pool kept for token holders full: the holder's next page takes a slot of the
    shared pool, and no stream (theirs or anyone's) is ended to make room."""
    app = create_app(hub, DashboardSettings(token=TOKEN, max_holder_streams=2))
    async with serving(app) as base, from_address(base, "127.0.0.2", **AUTH) as holder:
        oldest, second = await open_streams(holder, 2)
        (newest,) = await open_streams(holder, 1)
        tick = await oldest.next("tick")  # the oldest still streams
        for stream in (oldest, second, newest):
            await stream.close()
    assert set(tick) == {"now", "connection"}


async def test_streams_of_a_view_share_one_built_state(
    broker: InMemoryBroker, hub: DashboardHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 pages on one run: its state is built once per change, not once per page."""
    await Engine(InMemoryConnector(broker, source_id="engine-a")).run([double(1), double(2)])
    await broker.idle()
    (run_id,) = hub.model.state.runs
    details = count_run_details(hub, monkeypatch)
    app = create_app(hub, DashboardSettings(token=None))
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        streams = await open_streams(http, 8, run=run_id)
        first = details[0]
        version = hub.model.version
        await Engine(InMemoryConnector(broker, source_id="engine-b")).run(double(3))
        await broker.idle()
        for stream in streams:
            while (await stream.next())["version"] < hub.model.version:
                pass
        for stream in streams:
            await stream.close()
    assert hub.model.version > version
    assert first <= 2, first
    assert details[0] - first <= 3, details


async def test_an_idle_stream_sends_ticks_not_the_whole_state(hub: DashboardHub) -> None:
    """Nothing changed: the stream keeps the page's clock with a small tick, not the state."""
    app = create_app(hub, DashboardSettings(token=None))
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        (stream,) = await open_streams(http, 1)
        tick = await stream.next("tick")
        await stream.close()
    assert set(tick) == {"now", "connection"}
    assert tick["connection"]["connected"] is True


async def test_a_runs_detail_is_built_once_per_model_version(
    broker: InMemoryBroker, hub: DashboardHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked again later, nothing changed: the run's detail is reused (fresh time, same bytes)."""
    await Engine(InMemoryConnector(broker, source_id="engine-a")).run(double(1))
    await broker.idle()
    (run_id,) = hub.model.state.runs
    details = count_run_details(hub, monkeypatch)
    now = [0.0]
    snapshots = Snapshots(hub, controls=False, clock=lambda: now[0])
    first = json.loads(snapshots.get(run_id).body)
    now[0] += 10.0
    again = json.loads(snapshots.get(run_id).body)
    assert details == [1]
    assert again["run"] == first["run"]
    assert again["run"]["run_id"] == run_id
    await Engine(InMemoryConnector(broker, source_id="engine-a")).run(double(2))
    await broker.idle()
    now[0] += 10.0
    assert json.loads(snapshots.get(run_id).body)["version"] == hub.model.version
    assert details == [2]


async def test_a_change_stream_sends_a_snapshot_then_what_changed(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """?since=0: the page's view first (its runs, engines, constraints), then a run that
    appears comes as a change, without the whole state again."""
    await Engine(InMemoryConnector(broker, source_id="engine-a")).run(double(1))
    await broker.idle()
    (first_run,) = hub.model.state.runs
    app = create_app(hub, DashboardSettings(token=None))
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        stream = Stream(http, {"since": "0", "limit": "10"})
        await stream.open()
        snapshot = await stream.next("snapshot")
        await Engine(InMemoryConnector(broker, source_id="engine-b")).run(double(2))
        await broker.idle()
        (second_run,) = set(hub.model.state.runs) - {first_run}
        arrived: list[str] = []
        while second_run not in arrived:
            delta = await stream.next("delta")
            arrived += [run["run_id"] for run in delta.get("runs", {}).get("upsert", [])]
        await stream.close()
    assert [run["run_id"] for run in snapshot["runs"]["upsert"]] == [first_run]
    assert snapshot["runs"]["reset"] is True
    assert snapshot["epoch"] == hub.model.epoch
    assert "reset" not in delta["runs"]
    assert delta["runs"]["order"][0] == second_run  # the newest first among ended runs
    assert delta["runs"]["total"] == 2


async def test_a_change_stream_with_a_bad_view_is_refused(hub: DashboardHub) -> None:
    """A since that is no version, or a bad limit: 400 saying why, and no slot taken."""
    app = create_app(hub, DashboardSettings(token=None, max_streams=1))
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        bad_since = await http.get("/api/stream", params={"since": "yesterday"})
        bad_limit = await http.get("/api/stream", params={"since": "0", "limit": "0"})
        (fine,) = await open_streams(http, 1, "snapshot", since="0")
        await fine.close()
    assert (bad_since.status_code, bad_limit.status_code) == (400, 400)
    assert "since must be a whole number" in bad_since.json()["error"]
    assert "limit must be a whole number" in bad_limit.json()["error"]


async def unpacked_until(
    raw: AsyncIterator[bytes], unpack: Any, wanted: bytes, got: bytearray
) -> bytes:
    """Read ``raw`` (gzip) until what it unpacks to holds ``wanted``; all of it so far."""
    async for chunk in raw:
        got += unpack.decompress(chunk)
        if wanted in got:
            return bytes(got)
    raise EOFError("the stream ended")


async def test_a_page_that_takes_gzip_gets_each_event_as_it_is_sent(
    hub: DashboardHub, broker: InMemoryBroker
) -> None:
    """gzip, each event flushed whole: the snapshot, then a change, each readable as soon as
    it is sent (not held back until more comes to compress)."""
    async with (
        serving(create_app(hub, DashboardSettings(token=None))) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "GET", "/api/stream", params={"since": "0"}, headers={"accept-encoding": "gzip"}
        ) as response,
    ):
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "accept-encoding"
        raw, unpack, got = (
            response.aiter_raw(),
            zlib.decompressobj(16 + zlib.MAX_WBITS),
            bytearray(),
        )
        first = await asyncio.wait_for(unpacked_until(raw, unpack, b"event: snapshot", got), 10)
        assert first.startswith(b"retry: ")
        engine = InMemoryConnector(broker, presence=False)
        await engine.connect()
        said = StatusMessage(status="online", source="host-9", session=1)
        await engine.publish(status_topic("host-9"), said, qos=1, retain=True)
        await engine.disconnect()
        changed = await asyncio.wait_for(unpacked_until(raw, unpack, b"host-9", got), 10)
        assert b"event: delta" in changed[len(first) :]


@pytest.mark.parametrize("accepts", ["identity", "gzip;q=0", "br"])
async def test_a_page_that_does_not_take_gzip_gets_the_stream_plain(
    hub: DashboardHub, accepts: str
) -> None:
    async with (
        serving(create_app(hub, DashboardSettings(token=None))) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "GET", "/api/stream", params={"since": "0"}, headers={"accept-encoding": accepts}
        ) as response,
    ):
        assert "content-encoding" not in response.headers
        first = await asyncio.wait_for(anext(response.aiter_raw()), 10)
        assert first.startswith(b"retry: ")
