"""The dashboard's JSON API in-process on the in-memory broker: snapshot, stream, controls."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.live import STREAM_INTERVAL
from cascade.interfaces import decode_constraint
from cascade.metrics import bind
from cascade.runtime import Engine, task

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@task
async def double(n: int) -> int:
    """A quick task."""
    return n * 2


@task
async def fails(n: int) -> int:
    """A task that fails."""
    raise ValueError(f"bad input {n}")


def client(hub: DashboardHub, token: str | None = TOKEN) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=token)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def settle(broker: InMemoryBroker) -> None:
    await broker.idle()


async def test_snapshot_shows_engines_runs_tasks_and_constraints(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """GET /api/state has the engine, the run with its counts; ?run= adds each task's timeline."""
    engine = Engine(InMemoryConnector(broker, source_id="engine-a"))
    with pytest.raises(Exception, match="bad input 3"):
        await engine.run([double(1), double(2), fails(3)])
    await settle(broker)
    async with client(hub) as http:
        state = (await http.get("/api/state")).json()
        (run,) = state["runs"]
        detail = (await http.get("/api/state", params={"run": run["run_id"]})).json()["run"]
    assert [e["source"] for e in state["engines"]] == ["engine-a"]
    assert run["status"] == "Failed"
    assert run["counts"] == {"COMPLETED": 2, "FAILED": 1}
    assert run["progress"] == 1.0
    assert state["connection"]["connected"] is True
    assert state["controls"] is True
    assert state["run"] is None
    by_name = {t["name"]: t for t in detail["tasks"]}
    assert by_name["double"]["segments"][0]["state"] == "RUNNING"
    assert by_name["double"]["segments"][0]["outcome"] == "COMPLETED"
    assert by_name["fails"]["segments"][-1]["outcome"] == "FAILED"
    # the failed task's traceback, as its engine sent it, naming the line that raised
    traceback = by_name["fails"]["traceback"]
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert 'raise ValueError(f"bad input {n}")' in traceback
    assert traceback.endswith("ValueError: bad input 3\n")
    assert by_name["double"]["traceback"] is None
    assert detail["failures"] == [
        {
            "task_id": by_name["fails"]["task_id"],
            "name": "fails",
            "error": "ValueError: bad input 3",
        }
    ]


async def test_state_of_an_unknown_run_is_null(hub: DashboardHub) -> None:
    """?run= naming no known run gives "run": null, not an error."""
    async with client(hub) as http:
        answer = await http.get("/api/state", params={"run": "nope"})
    assert answer.status_code == 200
    assert answer.json()["run"] is None


async def test_page_and_assets_are_served_with_a_strict_policy(hub: DashboardHub) -> None:
    """The page loads one module, which imports the others, all from the package: each served
    as JavaScript (a module of another type is not run), every file of static/ among them and
    preloaded; a CSP that allows no inline script; no module builds HTML."""
    async with client(hub) as http:
        page = await http.get("/")
        sources = re.findall(r'<script [^>]*src="([^"]+)"', page.text)
        modules: dict[str, httpx.Response] = {}
        waiting = ["main.js"]
        while waiting:
            name = waiting.pop()
            modules[name] = await http.get(f"/static/{name}")
            imported = re.findall(r'^import .* from "\./([a-z]+\.js)";$', modules[name].text, re.M)
            waiting += [found for found in imported if found not in modules]
    assert page.status_code == 200
    assert sources == ["/static/main.js"]
    assert '<script type="module" src="/static/main.js"></script>' in page.text
    static = files("cascade.dashboard") / "static"
    assert set(modules) == {f.name for f in static.iterdir() if f.name.endswith(".js")}
    preloads = re.findall(r'<link rel="modulepreload" href="/static/([a-z]+\.js)">', page.text)
    assert sorted(preloads) == sorted(set(modules) - {"main.js"})  # each fetched at once
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN
    for module in modules.values():
        assert module.status_code == 200
        assert module.headers["content-type"].startswith("text/javascript")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in module.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy


async def test_controls_answer_401_without_a_configured_token(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """A dashboard started without --token is read-only, whatever the request carries."""
    async with client(hub, token=None) as http:
        post = await http.post(
            "/api/constraints", json={"scope": "global", "type": "pause"}, headers=AUTH
        )
        delete = await http.delete("/api/constraints", params={"scope": "global"}, headers=AUTH)
        state = (await http.get("/api/state")).json()
    assert (post.status_code, delete.status_code) == (401, 401)
    assert "read-only" in post.json()["error"]
    assert post.headers["www-authenticate"] == "Bearer"
    assert state["controls"] is False
    assert broker.retained_topics == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Cookie": f"t={TOKEN}"}],
)
async def test_controls_need_the_token_in_the_authorization_header(
    broker: InMemoryBroker, hub: DashboardHub, headers: dict[str, str]
) -> None:
    """Missing, wrong, scheme-less or cookie-borne tokens are refused with 401; nothing is sent."""
    async with client(hub) as http:
        post = await http.post(
            "/api/constraints", json={"scope": "global", "type": "pause"}, headers=headers
        )
        delete = await http.delete("/api/constraints", params={"scope": "global"}, headers=headers)
    assert (post.status_code, delete.status_code) == (401, 401)
    assert post.json() == {"error": "missing or wrong bearer token"}
    assert broker.retained_topics == []


def _plain(raw: bytes | None) -> dict[str, Any]:
    constraint = decode_constraint(raw or b"")
    return {"id": constraint.id, "scope": constraint.scope, "type": constraint.type,
            "params": constraint.params, "expiry": constraint.expires_at is not None}  # fmt: skip


def _dashboard(broker: InMemoryBroker, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0)
        await hub.start()
        try:
            async with client(hub) as http:
                headers = kwargs.pop("headers", AUTH)
                return await http.request(method, url, headers=headers, **kwargs)
        finally:
            await hub.stop()

    return asyncio.run(call())


CONTROLS = [
    (["pause", "task:api_*"], {"scope": "task:api_*", "type": "pause"}),
    (["pause", "global", "--ttl", "60"], {"scope": "global", "type": "pause", "ttl": 60}),
    (
        ["limit", "task:db", "--concurrency", "2"],
        {"scope": "task:db", "type": "concurrency", "params": {"limit": 2}},
    ),
    (
        ["limit", "task:db", "--rate", "10/m", "--ttl", "5"],
        {"scope": "task:db", "type": "rate_limit", "params": {"rate": "10/m"}, "ttl": 5},
    ),
]


@pytest.mark.parametrize(("argv", "body"), CONTROLS)
def test_post_publishes_what_the_cli_publishes(argv: list[str], body: dict[str, Any]) -> None:
    """POST /api/constraints leaves the same retained topics and payloads as the CLI, at QoS 1."""
    cli_broker, web_broker = InMemoryBroker(), InMemoryBroker()
    result = CliRunner().invoke(
        app,
        argv,
        obj=CliContext(connector_factory=lambda _: InMemoryConnector(cli_broker, presence=False)),
    )
    assert result.exit_code == 0, result.output
    answer = _dashboard(web_broker, "POST", "/api/constraints", json=body)
    assert answer.status_code == 200, answer.text
    topics = cli_broker.retained_topics
    assert web_broker.retained_topics == topics
    assert [_plain(web_broker.retained(t)) for t in topics] == [
        _plain(cli_broker.retained(t)) for t in topics
    ]
    assert [p["topic"] for p in answer.json()["published"]] == topics
    assert all(m.qos == 1 and m.retain for m in web_broker.history)


def test_delete_clears_what_resume_clears() -> None:
    """DELETE ?scope=&type= clears that type only; without type, every type of the scope."""
    broker = InMemoryBroker()
    for body in ({"scope": "task:db", "type": "pause"},
                 {"scope": "task:db", "type": "concurrency", "params": {"limit": 1}}):  # fmt: skip
        assert _dashboard(broker, "POST", "/api/constraints", json=body).status_code == 200
    one = _dashboard(
        broker, "DELETE", "/api/constraints", params={"scope": "task:db", "type": "pause"}
    )
    assert one.json() == {"cleared": ["cascade/constraints/task/db/pause"]}
    assert broker.retained_topics == ["cascade/constraints/task/db/concurrency"]
    everything = _dashboard(broker, "DELETE", "/api/constraints", params={"scope": "task:db"})
    assert everything.status_code == 200
    assert broker.retained_topics == []


# Each bad request, and the CLI command that gives the same mistake (exit 2).
INVALID = [
    ({"scope": "bogus", "type": "pause"}, ["pause", "bogus"]),
    ({"scope": "global", "type": "pause", "ttl": -5}, ["pause", "global", "--ttl", "-5"]),
    (
        {"scope": "task:x", "type": "concurrency", "params": {"limit": -1}},
        ["limit", "task:x", "--concurrency", "-1"],
    ),
    (
        {"scope": "task:x", "type": "rate_limit", "params": {"rate": "fast"}},
        ["limit", "task:x", "--rate", "fast"],
    ),
    (
        {"scope": "task:" + "x" * 300, "type": "pause"},
        ["pause", "task:" + "x" * 300],
    ),
]


@pytest.mark.parametrize(("body", "argv"), INVALID)
def test_invalid_controls_get_the_cli_message_with_400(
    invoke: Callable[..., Result], body: dict[str, Any], argv: list[str]
) -> None:
    """What the CLI refuses with exit 2, the API refuses with 400 and the same message."""
    cli = invoke(*argv)
    assert cli.exit_code == 2
    broker = InMemoryBroker()
    answer = _dashboard(broker, "POST", "/api/constraints", json=body)
    assert answer.status_code == 400
    message = answer.json()["error"]
    flat = "".join(ch for ch in cli.output if ch not in "│╭╮╰╯─ \n")
    assert message.replace(" ", "") in flat
    assert broker.retained_topics == []


def test_invalid_resume_type_gets_the_cli_message(invoke: Callable[..., Result]) -> None:
    """DELETE with an unknown type: 400 with `cascade resume --type`'s message."""
    cli = invoke("resume", "global", "--type", "bogus")
    assert cli.exit_code == 2
    answer = _dashboard(
        InMemoryBroker(), "DELETE", "/api/constraints", params={"scope": "global", "type": "bogus"}
    )
    assert answer.status_code == 400
    flat = "".join(ch for ch in cli.output if ch not in "│╭╮╰╯─ \n")
    assert answer.json()["error"].replace(" ", "") in flat


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([1, 2], "the body must be a JSON object"),
        ({"scope": "global", "type": "stop"}, "type must be pause, concurrency or rate_limit"),
        ({"scope": 3, "type": "pause"}, "scope must be a string"),
        ({"scope": "global", "type": "pause", "params": {"limit": 1}}, "params of pause take"),
        ({"scope": "global", "type": "concurrency", "params": {"limit": "2"}}, "whole number"),
        ({"scope": "global", "type": "concurrency", "params": {"limit": True}}, "whole number"),
        ({"scope": "global", "type": "pause", "ttl": "soon"}, "ttl must be a number"),
        ({"scope": "global", "type": "concurrency"}, "concurrency must be a whole number"),
        ({"scope": "global", "type": "rate_limit", "params": {"rate": []}}, "rate must be like"),
        ({"scope": "global", "type": "pause", "extra": 1}, "unknown fields: extra"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: Any, expected: str) -> None:
    """Shapes the CLI cannot even express are refused with 400 and say what is wrong."""
    broker = InMemoryBroker()
    answer = _dashboard(broker, "POST", "/api/constraints", json=body)
    assert answer.status_code == 400
    assert expected in answer.json()["error"]
    assert broker.retained_topics == []


def test_non_json_and_huge_bodies_are_refused() -> None:
    """A form post (no JSON type), bad JSON and an oversized body never reach the broker."""
    broker = InMemoryBroker()
    form = _dashboard(broker, "POST", "/api/constraints", data={"scope": "global"})
    bad = _dashboard(
        broker,
        "POST",
        "/api/constraints",
        content=b"{nope",
        headers={**AUTH, "content-type": "application/json"},
    )
    huge = _dashboard(
        broker,
        "POST",
        "/api/constraints",
        content=json.dumps({"scope": "global", "type": "pause", "x": "y" * 20000}).encode(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert (form.status_code, bad.status_code, huge.status_code) == (415, 400, 413)
    assert broker.retained_topics == []


def test_delete_without_scope_is_refused() -> None:
    """DELETE must name its scope: nothing is cleared by default."""
    answer = _dashboard(InMemoryBroker(), "DELETE", "/api/constraints")
    assert answer.status_code == 400
    assert "scope" in answer.json()["error"]


async def test_stream_pushes_coalesced_updates(broker: InMemoryBroker, hub: DashboardHub) -> None:
    """The SSE stream sends the state when it changes, at most one update per interval."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub, DashboardSettings(token=None)), log_level="warning", lifespan="off"
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    burst = 3000
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
            http.stream("GET", "/api/stream") as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            first = await _next_state(lines)
            publisher = InMemoryConnector(broker, presence=False)
            await publisher.connect()
            loop = asyncio.get_running_loop()
            started = loop.time()
            for n in range(burst):
                await publisher.publish(f"cascade/status/engine-{n % 50}", {"status": "online",
                                        "source": f"engine-{n % 50}", "session": n})  # fmt: skip
                if n % 100 == 0:
                    await asyncio.sleep(0)
            updates = 0
            while True:
                state = await _next_state(lines)
                updates += 1
                if state["version"] >= first["version"] + burst:
                    break
            elapsed = loop.time() - started
            await publisher.disconnect()
        assert len(state["engines"]) == 50
        assert updates <= elapsed / STREAM_INTERVAL + 2, (updates, elapsed)
        assert updates < burst / 100
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _next_state(lines: AsyncIterator[str]) -> dict[str, Any]:
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "state":
            state: dict[str, Any] = json.loads(line[6:])
            return state
    raise AssertionError("the stream ended")


async def test_streams_beyond_the_cap_are_refused(hub: DashboardHub) -> None:
    """With max_streams=1, a second page gets 503 while the first is open."""
    sock = bind("127.0.0.1", 0)
    app = create_app(hub, DashboardSettings(token=None, max_streams=1))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as http,
            http.stream("GET", "/api/stream") as first,
        ):
            await _next_state(first.aiter_lines())
            second = await http.get("/api/stream")
            assert second.status_code == 503
            assert "at most 1" in second.json()["error"]
    finally:
        server.should_exit = True
        await serving
        sock.close()


@task
def extract(n: int) -> list[int]:
    """A task worth caching."""
    return list(range(n))


async def test_a_task_its_cache_gave_a_result_is_shown_cached(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """A run's detail says which tasks took their result from their cache, and whose it was."""
    engine = Engine(
        InMemoryConnector(broker, source_id="engine-a"), results=f"memory://{uuid.uuid4().hex}"
    )
    await engine.run(double(extract(3).with_cache()))
    await engine.run(double(extract(3).with_cache()))
    await settle(broker)
    async with client(hub) as http:
        state = (await http.get("/api/state")).json()
        details = [
            (await http.get("/api/state", params={"run": run["run_id"]})).json()["run"]
            for run in state["runs"]
        ]
    seen = sorted(
        (task["name"], task["cached"], task["reused_from"] is not None)
        for detail in details
        for task in detail["tasks"]
    )
    assert seen == [
        ("double", False, False),
        ("double", False, False),
        ("extract", False, False),
        ("extract", True, True),
    ]
