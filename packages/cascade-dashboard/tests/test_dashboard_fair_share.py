"""Each person's fair share of a dashboard: a viewer's streams and history loops never cost the
operator hers, one's own excess is refused to oneself (429), those who steer come first, and
requests nobody vouches for are refused before they take anything. Slow histories are made
slow with events, never sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, Tokens, create_app
from cascade.dashboard.live import Claimant, HistoryReaders, StreamSlots
from cascade.history import History, RunSummary
from cascade.metrics import bind

ROLES = Roles.parse("""
[[grant]]
role = "operator"
scopes = ["org:acme"]
people = ["olga"]

[[grant]]
role = "viewer"
scopes = ["org:acme"]
people = ["vera", "victor"]
""")
TOKENS = ["olga=olga-secret", "vera=vera-secret", "victor=victor-secret", "hugo=hugo-secret"]
OLGA = {"Authorization": "Bearer olga-secret"}
VERA = {"Authorization": "Bearer vera-secret"}
VICTOR = {"Authorization": "Bearer victor-secret"}
TOKEN = "s3cret-token"
HOLDER = {"Authorization": f"Bearer {TOKEN}"}
RETRY_AFTER = "2"
STREAMS = StreamSlots()  # the dashboard's limits, as its app takes them
READERS = HistoryReaders()


class SlowHistory(History):
    """Runs of the project ``slow`` are answered only when let go; others at once."""

    def __init__(self, url: Path) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.inside = 0
        self.lock = threading.Lock()
        self.all_in = threading.Event()
        self.wanted = 1

    def runs(self, **filters: Any) -> list[RunSummary]:
        if filters.get("project") != "slow":
            return super().runs(**filters)
        with self.lock:
            self.inside += 1
            if self.inside >= self.wanted:
                self.all_in.set()
        if not self.release.wait(10):
            raise AssertionError("never let go")
        return super().runs(**filters)


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite3"
    History(path, mode="write").close()
    return path


def team_app(
    hub: DashboardHub, history: History | None = None, max_streams: int = STREAMS.total
) -> Any:
    tokens = Tokens.parse(TOKENS, "dash")
    settings = DashboardSettings(
        token=tokens, roles=ROLES, history=history, max_streams=max_streams
    )
    return create_app(hub, settings)


def client(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


def slow_search(http: httpx.AsyncClient, headers: dict[str, str]) -> asyncio.Future[Any]:
    params = {"project": "slow"}
    return asyncio.ensure_future(http.get("/api/history/runs", params=params, headers=headers))


# -- history readers ------------------------------------------------------------------------


async def test_a_viewers_looping_searches_never_make_the_operators_reads_fail(
    recorded: Path,
) -> None:
    """A viewer fires 20 slow searches at once (every worker for everyone busy, one waiting):
    her excess is 429 with Retry-After, and the operator's 40 reads meanwhile all answer
    200 (before: one pool for every signed-in person, and 503 for hers)."""
    with SlowHistory(recorded) as history:
        hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
        async with client(team_app(hub, history)) as http:
            loop = [slow_search(http, VERA) for _ in range(20)]
            try:
                assert await asyncio.to_thread(history.all_in.wait, 10)
                reads = []
                for _ in range(20):  # two at a time, as the page reads (tasks and audit)
                    pair = [http.get("/api/history/runs", headers=OLGA) for _ in range(2)]
                    reads += await asyncio.gather(*pair)
                held = sum(not search.done() for search in loop)
            finally:
                history.release.set()
            searches = await asyncio.gather(*loop)
    assert [read.status_code for read in reads] == [200] * 40
    assert held == READERS.per_person
    statuses = sorted(search.status_code for search in searches)
    assert statuses == [200] * READERS.per_person + [429] * (20 - READERS.per_person)
    refused = next(search for search in searches if search.status_code == 429)
    assert refused.headers["retry-after"] == RETRY_AFTER
    assert "of yours" in refused.json()["error"]


async def test_the_token_holder_is_served_while_anonymous_readers_fill_their_workers(
    recorded: Path,
) -> None:
    """A dashboard without roles: every worker for everyone busy with anonymous queries: the
    token holder's query is answered at once, on the worker kept for those served first."""
    with SlowHistory(recorded) as history:
        history.wanted = READERS.workers
        hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
        app = create_app(hub, DashboardSettings(token=TOKEN, history=history))
        async with client(app) as http:
            slow = [slow_search(http, {}) for _ in range(READERS.workers)]
            try:
                assert await asyncio.to_thread(history.all_in.wait, 10)
                operator = await http.get("/api/history/runs", headers=HOLDER)
                state = await http.get("/api/state")  # the live page, meanwhile
                still_held = not any(task.done() for task in slow)
            finally:
                history.release.set()
            answers = await asyncio.gather(*slow)
    assert (operator.status_code, operator.json()) == (200, {"runs": []})
    assert state.status_code == 200
    assert still_held
    assert [answer.status_code for answer in answers] == [200] * READERS.workers


async def test_beyond_the_waiting_bound_the_dashboard_is_busy() -> None:
    """The seam: every worker busy and as many waiting as may: the next request (of someone
    else, within their own share) is refused 503, a dashboard too busy."""
    readers = HistoryReaders(workers=1, reserved=0, per_person=4, waiting=1)
    vera, victor = Claimant("token:vera", named=True), Claimant("token:victor", named=True)
    go = threading.Event()
    running = asyncio.ensure_future(readers.run(vera, lambda: go.wait(10)))
    waiting = asyncio.ensure_future(readers.run(vera, lambda: "waited"))
    await asyncio.sleep(0)  # each steps to where it waits
    busy = await readers.run(victor, lambda: "never")
    go.set()
    assert await running is True
    assert await waiting == "waited"
    assert isinstance(busy, Exception)
    assert (busy.status, busy.message) == (503, "too many history requests at once: try again")


async def test_requests_wait_their_turn_within_the_queue(recorded: Path) -> None:
    """Within the queue's bound an anonymous request waits for a worker, and is answered;
    the token holder's, meanwhile, runs on the worker kept for those served first."""
    with SlowHistory(recorded) as history:
        history.wanted = READERS.workers
        hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
        async with client(create_app(hub, DashboardSettings(token=TOKEN, history=history))) as http:
            slow = [slow_search(http, {}) for _ in range(READERS.workers)]
            try:
                assert await asyncio.to_thread(history.all_in.wait, 10)
                waiting = asyncio.ensure_future(
                    http.get("/api/history/runs", params={"project": "fast"})
                )
                # a whole request through the loop meanwhile: the holder's, on its own worker
                operator = await http.get("/api/history/runs", headers=HOLDER)
                waited = not waiting.done()
            finally:
                history.release.set()
            answers = await asyncio.gather(*slow, waiting)
    assert operator.status_code == 200
    assert waited
    assert [answer.status_code for answer in answers] == [200] * (READERS.workers + 1)


async def test_people_take_turns_and_operators_go_first() -> None:
    """The seam itself, one worker: while a viewer's query runs, two more of hers wait, then
    another viewer's, then an operator's: the operator's runs next, then the viewers take
    turns (not first come, first served)."""
    readers = HistoryReaders(workers=1, reserved=0, per_person=4, waiting=8)
    vera = Claimant("token:vera", named=True)
    victor = Claimant("token:victor", named=True)
    olga = Claimant("token:olga", first=True, named=True)
    go, ran = threading.Event(), list[str]()

    def job(name: str) -> str:
        ran.append(name)
        return name

    running = asyncio.ensure_future(readers.run(vera, lambda: go.wait(10)))
    asked = []
    for who, name in ((vera, "vera-2"), (vera, "vera-3"), (victor, "victor"), (olga, "olga")):
        asked.append(asyncio.ensure_future(readers.run(who, functools.partial(job, name))))
        await asyncio.sleep(0)  # each asked in turn
    go.set()
    assert await running is True
    assert await asyncio.gather(*asked) == ["vera-2", "vera-3", "victor", "olga"]
    assert ran == ["olga", "vera-2", "victor", "vera-3"]


async def test_a_waiting_request_that_goes_gives_its_turn_back() -> None:
    """The seam itself: a request cancelled while it waits leaves no count behind, and the
    next one runs."""
    readers = HistoryReaders(workers=1, reserved=0, per_person=2, waiting=4)
    vera = Claimant("token:vera", named=True)
    go = threading.Event()
    running = asyncio.ensure_future(readers.run(vera, lambda: go.wait(10)))
    waiting = asyncio.ensure_future(readers.run(vera, lambda: "second"))
    await asyncio.sleep(0)  # each steps to where it waits: on its worker, for its turn
    assert readers.under_way["token:vera"] == 2
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert readers.under_way["token:vera"] == 1
    go.set()
    assert await running is True
    assert await readers.run(vera, lambda: "after") == "after"
    assert not readers.under_way
    assert readers.running == {True: 0, False: 0}


# -- streams --------------------------------------------------------------------------------


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


class Stream:
    """One open change stream (``?since=0``), read event by event."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http, self.headers = http, headers
        self.stack = contextlib.AsyncExitStack()

    async def open(self) -> int:
        request = self.http.stream("GET", "/api/stream", params={"since": "0"},
                                   headers=self.headers)  # fmt: skip
        self.response = await self.stack.enter_async_context(request)
        self.lines = self.response.aiter_lines()
        if self.response.status_code == 200:
            await self.next("snapshot")
        return self.response.status_code

    async def next(self, kind: str) -> dict[str, Any]:
        event = ""
        async for line in self.lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == kind:
                data: dict[str, Any] = json.loads(line[6:])
                return data
        raise EOFError("the stream ended")

    async def close(self) -> None:
        await self.stack.aclose()


async def test_a_viewer_opening_16_streams_never_ends_the_operators(hub: DashboardHub) -> None:
    """The operator's page streams; a viewer opens 16: she gets her share (8), her excess is
    429 with Retry-After, and the operator's stream goes on (before: a pool of 16 for every
    signed-in person, whose newest ended the oldest: the operator's)."""
    app = team_app(hub)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        olga = Stream(http, OLGA)
        assert await olga.open() == 200
        viewers = [Stream(http, VERA) for _ in range(16)]
        statuses = [await stream.open() for stream in viewers]
        try:
            tick: dict[str, Any] | None = await olga.next("tick")  # still streaming, 2 s on
        except EOFError:
            tick = None
        refused = next((s.response for s in viewers if s.response.status_code == 429), None)
        error = json.loads(await refused.aread()) if refused is not None else None
        for stream in [olga, *viewers]:
            await stream.close()
    assert tick is not None, "the operator's stream ended"
    assert set(tick) == {"now", "connection"}
    per_person = STREAMS.per_person
    assert statuses == [200] * per_person + [429] * (16 - per_person)
    assert refused is not None
    assert refused.headers["retry-after"] == RETRY_AFTER
    assert error is not None
    assert "of yours" in error["error"]


async def test_the_operators_keep_their_own_pool(hub: DashboardHub) -> None:
    """Viewers have taken every slot of the pool everyone shares: the operator's page still
    gets a stream (the pool kept for operators and admins), a third viewer gets 503."""
    app = team_app(hub, max_streams=2)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        viewers = [Stream(http, VERA), Stream(http, VICTOR)]
        assert [await stream.open() for stream in viewers] == [200, 200]
        late = Stream(http, VICTOR)
        olga = Stream(http, OLGA)
        late_status, olga_status = await late.open(), await olga.open()
        for stream in [olga, late, *viewers]:
            await stream.close()
    assert (late_status, olga_status) == (503, 200)


def test_a_persons_share_is_counted_by_who_they_are_not_where_from() -> None:
    """Two people behind one address each get their share; a person's closed stream gives
    the slot back; those nobody vouches for are counted by address."""
    slots = StreamSlots(total=100, per_client=1, holders=0, per_person=2)
    vera = Claimant("token:vera", named=True)
    victor = Claimant("token:victor", named=True)
    taken = [slots.take(vera), slots.take(vera), slots.take(victor)]
    excess = slots.take(vera)
    assert not any(isinstance(slot, Exception) for slot in taken)
    assert isinstance(excess, Exception)
    assert excess.status == 429
    first = taken[0]
    assert not isinstance(first, Exception)
    slots.give_back(first)
    assert not isinstance(slots.take(vera), Exception)
    anonymous = Claimant("address:10.0.0.1")
    assert not isinstance(slots.take(anonymous), Exception)
    refused = slots.take(anonymous)
    assert isinstance(refused, Exception)
    assert (refused.status, refused.message) == (429, "too many live streams from 10.0.0.1 "
                                                      "(at most 1)")  # fmt: skip


# -- those nobody vouches for ---------------------------------------------------------------


async def test_an_anonymous_flood_is_refused_without_taking_a_slot(recorded: Path) -> None:
    """200 requests without a sign-in to the stream and the history, while the one slot for
    everyone is free: every one is a 401, no query reaches the history, and the viewer's
    stream and read still get in."""
    with SlowHistory(recorded) as history:
        hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
        app = team_app(hub, history, max_streams=1)
        async with client(app) as http:
            flood = [http.get("/api/stream", params={"since": "0"}) for _ in range(100)]
            flood += [http.get("/api/history/runs", params={"project": "slow"})
                      for _ in range(100)]  # fmt: skip
            answers = await asyncio.gather(*flood)
            read = await http.get("/api/history/runs", headers=VERA)
        async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as live:
            vera = Stream(live, VERA)
            status = await vera.open()
            await vera.close()
    assert {answer.status_code for answer in answers} == {401}
    assert history.inside == 0
    assert read.status_code == 200
    assert status == 200
