"""What the dashboard checks before it serves: the Host header, the token's bytes, the body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.app import MAX_BODY

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


# -- Host --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8787", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8787",
             "127.5.6.7:1", "localhost."],
)  # fmt: skip
async def test_loopback_hosts_are_served(hub: DashboardHub, host: str) -> None:
    """Loopback names and addresses, with or without a port, are served by default."""
    async with client(create_app(hub, DashboardSettings(token=TOKEN))) as http:
        answer = await http.get("/api/state", headers={"Host": host})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8787", "localhost.evil.example", "127.0.0.1.nip.io",
             "", "[::1", "a:b:c", "192.168.1.5"],
)  # fmt: skip
async def test_other_hosts_are_refused_with_one_line(
    broker: InMemoryBroker, hub: DashboardHub, host: str
) -> None:
    """A rebound name (or a malformed Host) gets 400 and a one-line JSON error, for every route."""
    async with client(create_app(hub, DashboardSettings(token=TOKEN))) as http:
        answers = [
            await http.get("/api/state", headers={"Host": host}),
            await http.get("/", headers={"Host": host}),
            await http.post(
                "/api/constraints",
                json={"scope": "global", "type": "pause"},
                headers={**AUTH, "Host": host},
            ),
        ]
    assert [a.status_code for a in answers] == [400] * 3
    error = answers[0].json()["error"]
    assert "--allowed-host" in error
    assert "\n" not in error
    assert broker.retained_topics == []


async def test_the_listen_host_and_allowed_hosts_are_served(hub: DashboardHub) -> None:
    """The --listen host and every --allowed-host name are served; others still are not."""
    app = create_app(
        hub, DashboardSettings(token=None, host="dash.internal", allowed_hosts=("Ops.Example",))
    )
    async with client(app) as http:
        codes = [
            (await http.get("/api/state", headers={"Host": host})).status_code
            for host in ("dash.internal:8787", "ops.example", "OPS.EXAMPLE.:80", "other.example")
        ]
    assert codes == [200, 200, 200, 400]


async def test_on_every_interface_addresses_are_served_names_are_not(hub: DashboardHub) -> None:
    """Listening on 0.0.0.0, an address as Host cannot be rebound and is served; a name is not."""
    app = create_app(hub, DashboardSettings(token=None, host="0.0.0.0"))
    async with client(app) as http:
        codes = [
            (await http.get("/api/state", headers={"Host": host})).status_code
            for host in ("192.168.1.5:8787", "[fe80::1]:8787", "evil.example")
        ]
    assert codes == [200, 200, 400]


def test_allowed_host_is_documented(invoke: Callable[..., Result]) -> None:
    """`cascade dashboard --help` names --allowed-host."""
    result = invoke("dashboard", "--help")
    assert "--allowed-host" in result.output


# -- token -------------------------------------------------------------------------------


async def test_a_non_ascii_token_matches_its_utf8_bytes(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """A token like 'pässwörd' matches when sent as UTF-8 (as the page sends it), not Latin-1."""
    token = "pässwörd-ok"
    body = {"scope": "global", "type": "pause"}
    async with client(create_app(hub, DashboardSettings(token=token))) as http:
        as_latin1 = {b"Authorization": b"Bearer " + token.encode("latin-1")}
        latin1 = await http.post("/api/constraints", json=body, headers=as_latin1)
        assert latin1.status_code == 401
        assert broker.retained_topics == []
        as_utf8 = {b"Authorization": b"Bearer " + token.encode()}
        utf8 = await http.post("/api/constraints", json=body, headers=as_utf8)
    assert utf8.status_code == 200, utf8.text


# -- bodies ------------------------------------------------------------------------------


async def test_a_deeply_nested_body_is_a_400(broker: InMemoryBroker, hub: DashboardHub) -> None:
    """10 KB of brackets 5,000 deep (inside the size limit): 400, no RecursionError."""
    raw = '{"scope": "global", "type": "pause", "params": ' + "[" * 5000 + "]" * 5000 + "}"
    assert len(raw) < MAX_BODY
    async with client(create_app(hub, DashboardSettings(token=TOKEN))) as http:
        for content in (raw, "[" * 5000 + "]" * 5000, "{" * 5000):
            answer = await http.post("/api/constraints", content=content, headers=AUTH)
            assert answer.status_code == 400, answer.text
    assert broker.retained_topics == []


async def test_a_scope_that_is_not_unicode_is_a_400(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """A lone surrogate in the scope (or anywhere) is refused with 400, never a 500."""
    async with client(create_app(hub, DashboardSettings(token=TOKEN))) as http:
        for raw in ('{"scope": "task:\\ud800", "type": "pause"}',
                    '{"scope": "global", "type": "pause", "\\udfff": 1}'):  # fmt: skip
            answer = await http.post("/api/constraints", content=raw, headers=AUTH)
            assert answer.status_code == 400, answer.text
            assert "\n" not in answer.json()["error"]
    assert broker.retained_topics == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_json_constants_are_not_json(hub: DashboardHub, constant: str) -> None:
    """NaN and Infinity, which Python's json takes, are refused as not JSON."""
    raw = f'{{"scope": "global", "type": "pause", "ttl": {constant}}}'
    async with client(create_app(hub, DashboardSettings(token=TOKEN))) as http:
        answer = await http.post("/api/constraints", content=raw, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"] == "the body is not JSON"


def _post(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """POST to ``app`` as a server would: the body in ``chunks`` (more follow after the last).

    Returns the status and how many chunks the app read.
    """
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/constraints", "raw_path": b"",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8787),
             "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {TOKEN}".encode()),
                         (b"content-type", b"application/json"), *headers]}  # fmt: skip
    read = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= len(chunks):
            raise AssertionError(f"the app read past {read} chunks")
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    asyncio.run(_call(app, scope, receive, send))
    return status, read


async def _call(app: Any, scope: Any, receive: Any, send: Any) -> None:
    await app(scope, receive, send)


def test_an_oversized_content_length_is_refused_before_reading(broker: InMemoryBroker) -> None:
    """Content-Length: 50 MB is a 413 at once: not one byte of the body is read."""
    app = create_app(
        DashboardHub(InMemoryConnector(broker, presence=False)), DashboardSettings(token=TOKEN)
    )
    status, read = _post(app, [(b"content-length", str(50 * 2**20).encode())], [])
    assert (status, read) == (413, 0)


def test_a_streamed_body_is_read_no_further_than_the_limit(broker: InMemoryBroker) -> None:
    """A body without a length, sent in 1 KB chunks: 413 once past MAX_BODY, nothing more read."""
    app = create_app(
        DashboardHub(InMemoryConnector(broker, presence=False)), DashboardSettings(token=TOKEN)
    )
    chunk = b" " * 1024
    status, read = _post(app, [], [chunk] * (10 * MAX_BODY // len(chunk)))
    assert status == 413
    assert read == MAX_BODY // len(chunk) + 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_CONSTRAINTS = st.fixed_dictionaries(
    {"scope": st.sampled_from(["global", "task:x*"]) | st.text(max_size=40) | _JSON,
     "type": st.sampled_from(["pause", "concurrency", "rate_limit"]) | _JSON},
    optional={"params": st.dictionaries(st.sampled_from(["limit", "rate", "x"]), _JSON)
              | _JSON, "ttl": _JSON},
)  # fmt: skip
_BODIES = (
    _CONSTRAINTS.map(json.dumps)
    | _JSON.map(json.dumps)
    | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_BODIES)
def test_any_body_gets_an_answer_never_a_500(raw: str) -> None:
    """Whatever JSON-ish body a token holder posts: 200 or a 4xx with a reason, never a 500."""

    async def post() -> httpx.Response:
        hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False), timeout=2.0)
        await hub.start()
        try:
            async with client(create_app(hub, DashboardSettings(token=TOKEN))) as http:
                return await http.post(
                    "/api/constraints", content=raw.encode("utf-8", "surrogatepass"),
                    headers=AUTH,
                )  # fmt: skip
        finally:
            await hub.stop()

    answer = asyncio.run(post())
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, answer.text
    if answer.status_code != 200:
        assert answer.json()["error"]
