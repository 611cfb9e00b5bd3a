"""A team's dashboard end to end: people signed in through a real OpenID Connect provider,
engines of two orgs on a real broker, a recorder keeping their runs and logs, the dashboard
over real HTTP. A viewer sees only their project (its logs in the history too) and is refused
every control; an operator steers within their scopes only; another org's run is to each of
them a run nobody heard of (its cancel a 404, as an unknown id's); the refusals and the
controls name the person who signed in."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread
from rich.console import Console

from cascade.cli.plumbing import BrokerOptions, mqtt_connector
from cascade.connectors.mqtt import MqttConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardSettings, OidcSignIn, Tokens, serve_dashboard
from cascade.history import History, Recorder
from cascade.runtime import Engine, LogForwarding, RunStarted, task
from cascade.testkit import BrokerEndpoint, free_port

from .test_dashboard_sign_in_over_http import sign_in_as

pytestmark = [
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

ROOT = "root-secret-for-the-test"
USERS = [
    User(sub="vera", claims={"email": "vera@example.com", "email_verified": True}),
    User(
        sub="olga",
        claims={"email": "olga@example.com", "email_verified": True, "groups": ["data-eng"]},
    ),
]


def roles(tasks: str) -> str:
    return f"""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl", "task:{tasks}_*"]
groups = ["data-eng"]

[[grant]]
role = "viewer"
scopes = ["global"]
people = ["root@example.com"]
"""


@pytest.fixture
def issuer() -> Iterator[str]:
    with run_server_in_thread(user_claims=USERS, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
async def recorded(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> AsyncIterator[History]:
    """A history a recorder on the broker writes every run and log line into."""
    history = History(f"sqlite:///{tmp_path / 'history.sqlite3'}", mode="write")
    recording = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    recorder = Recorder(recording, history)
    await recording.connect()
    await recorder.start()
    try:
        yield history
    finally:
        await recorder.stop()
        await recording.disconnect()
        history.close()


@pytest.fixture
async def dashboard(
    mqtt_broker: BrokerEndpoint,
    issuer: str,
    tmp_path: Path,
    scope_name: str,
    recorded: History,
) -> AsyncIterator[str]:
    path = tmp_path / "roles.toml"
    path.write_text(roles(scope_name), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sign_in = OidcSignIn(issuer, "cascade-dashboard", "a-client-secret", url,
                         "a-session-secret-of-32-characters")  # fmt: skip
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port)
    serving = asyncio.create_task(
        serve_dashboard(
            DashboardSettings(
                connector=lambda: mqtt_connector(options),
                port=port,
                token=Tokens.parse([f"root@example.com={ROOT}"], "dash"),
                say=Console(record=True, width=200).print,
                on_ready=ready.set_result,
                sign_in=sign_in,
                roles=Roles.load(path),
                history=History(recorded.location),
            )
        )
    )
    try:
        await asyncio.wait_for(asyncio.shield(ready), 10)
        yield url
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def run_in(mqtt_broker: BrokerEndpoint, org: str, project: str, name: str) -> str:
    """One run of one task in ``org``/``project``, to its end; its id."""

    @task(name=name)
    async def step() -> str:
        logging.getLogger("it.team").warning("the secret of %s/%s", org, project)
        return "ok"

    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port)
    engine = Engine(connector, org_id=org, project_id=project, summaries=False,
                    logs=LogForwarding())  # fmt: skip
    started: list[str] = []
    engine.events.subscribe(
        lambda e: started.append(e.run_id) if isinstance(e, RunStarted) else None
    )
    await engine.run(step())
    return started[0]


async def seen_by_root(http: httpx.AsyncClient, url: str, *run_ids: str) -> None:
    """Until the dashboard has heard every one of ``run_ids`` (as someone who sees all)."""
    deadline = time.monotonic() + 10
    while True:
        state = await http.get(f"{url}/api/state", params={"limit": 500},
                               headers={"Authorization": f"Bearer {ROOT}"})  # fmt: skip
        if set(run_ids) <= {run["run_id"] for run in state.json()["runs"]}:
            return
        assert time.monotonic() < deadline, "the dashboard never heard the runs"
        await asyncio.sleep(0.1)


async def logged(http: httpx.AsyncClient, url: str, run_id: str) -> list[str]:
    """Once the history has them, the lines of ``run_id`` the signed-in person reads there."""
    deadline = time.monotonic() + 10
    while True:
        answer = await http.get(f"{url}/api/history/runs/{run_id}/logs")
        assert answer.status_code == 200, answer.text
        if answer.json()["lines"]:
            return [line["message"] for line in answer.json()["lines"]]
        assert time.monotonic() < deadline, "the history never had the run's lines"
        await asyncio.sleep(0.1)  # the recorder writes within moments


async def as_unknown(http: httpx.AsyncClient, method: str, url: str, run_id: str) -> None:
    """``method url`` about ``run_id`` (another org's) is answered exactly as about an id
    nobody has: the same status, the same body."""
    unknown = "f" * 32
    theirs = await http.request(method, url.format(run_id))
    nobodys = await http.request(method, url.format(unknown))
    assert theirs.status_code == nobodys.status_code, url
    assert theirs.text == nobodys.text.replace(unknown, run_id), url
    assert "globex" not in theirs.text


async def first_event(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The first event of a live stream (a snapshot of the page's view)."""
    async with http.stream("GET", url) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                return dict(json.loads(line[len("data: ") :]))
    raise AssertionError("the stream ended without an event")


async def test_a_viewer_sees_its_project_only_and_is_refused_every_control(
    dashboard: str,
    mqtt_broker: BrokerEndpoint,
    scope_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cascade.dashboard.access")
    etl = await run_in(mqtt_broker, "acme", "etl", f"{scope_name}_load")
    web = await run_in(mqtt_broker, "globex", "web", f"{scope_name}_crawl")
    async with httpx.AsyncClient(timeout=10) as http:
        await seen_by_root(http, dashboard, etl, web)
        await sign_in_as(http, dashboard, "vera", "/")
        state = (await http.get(f"{dashboard}/api/state", params={"limit": 500})).json()
        listed = {run["run_id"] for run in state["runs"]}
        assert etl in listed
        assert web not in listed
        other = await http.get(f"{dashboard}/api/state", params={"run": web})
        assert other.json()["run"] is None
        refused = [
            await http.post(f"{dashboard}/api/constraints",
                            json={"scope": f"task:{scope_name}_*", "type": "pause"}),
            await http.delete(f"{dashboard}/api/constraints",
                              params={"scope": f"task:{scope_name}_*"}),
            await http.post(f"{dashboard}/api/runs/{etl}/cancel"),
        ]  # fmt: skip
        assert [answer.status_code for answer in refused] == [403, 403, 403]
        assert refused[0].json()["error"] == (
            f"vera@example.com is not an operator of scope task:{scope_name}_*"
        )
        assert (await http.get(f"{dashboard}/metrics")).status_code == 403
        first = await first_event(http, f"{dashboard}/api/stream?since=0&run={web}")
        assert etl in {run["run_id"] for run in first["runs"]["upsert"]}
        assert web not in {run["run_id"] for run in first["runs"]["upsert"]}
        assert first.get("run") is None
        assert first["controls"] is False
        # her project's logs, from the history (was: 400 "limit must be at least 1")
        assert await logged(http, dashboard, etl) == ["the secret of acme/etl"]
        for method, url in (
            ("GET", f"{dashboard}/api/history/runs/{{}}/logs"),
            ("GET", f"{dashboard}/api/history/run?id={{}}"),
            ("POST", f"{dashboard}/api/runs/{{}}/cancel"),
        ):
            await as_unknown(http, method, url, web)
        status = (await http.get(f"{dashboard}/api/history")).json()
        assert (status["history"], status["location"]) == (True, None)
    rows = [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "cascade.dashboard.access"]  # fmt: skip
    said = {k: rows[0][k] for k in ("outcome", "who", "via", "claim", "action", "target")}
    target = f"task:{scope_name}_*"
    assert said == {"outcome": "refused", "who": "vera@example.com", "via": "oidc",
                    "claim": "email", "action": "pause", "target": target}  # fmt: skip
    # the two cancels of runs she may not see (hidden, unknown): one refusal, folded in one row
    assert len(rows) == 5


async def test_an_operator_pauses_within_its_scope_and_not_outside(
    dashboard: str,
    mqtt_broker: BrokerEndpoint,
    scope_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cascade.dashboard.access")
    web = await run_in(mqtt_broker, "globex", "web", f"{scope_name}_crawl")
    async with httpx.AsyncClient(timeout=10) as http:
        await seen_by_root(http, dashboard, web)
        await sign_in_as(http, dashboard, "olga", "/")
        # her grant names a project: she steers its tasks there, never every org's
        scope = f"project:acme/etl/task:{scope_name}_load"
        pause = {"scope": scope, "type": "pause", "reason": "db upgrade"}
        paused = await http.post(f"{dashboard}/api/constraints", json=pause)
        assert paused.status_code == 200, paused.text
        for outside in ("global", "task:*", f"task:{scope_name}_load"):
            answer = await http.post(f"{dashboard}/api/constraints",
                                     json={"scope": outside, "type": "pause"})  # fmt: skip
            assert answer.status_code == 403, outside
        # another org's run: a 404 as an unknown id's (was: 403 naming globex/web)
        await as_unknown(http, "POST", f"{dashboard}/api/runs/{{}}/cancel", web)
        shown = (await http.get(f"{dashboard}/api/state",
                                headers={"Authorization": f"Bearer {ROOT}"})).json()  # fmt: skip
        (mine,) = [c for c in shown["constraints"] if c["scope"] == scope]
        assert (mine["issued_by"], mine["reason"]) == ("olga@example.com", "db upgrade")
        resumed = await http.delete(f"{dashboard}/api/constraints", params={"scope": scope})
        assert resumed.status_code == 200, resumed.text
    rows = [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "cascade.dashboard.access"]  # fmt: skip
    # A fold's count is written again once its minute ends: a test that crosses a minute's
    # end would see the folded cancels' row twice, so only rows as first written are counted.
    said = [(r["outcome"], r["who"], r["via"], r["action"], r["target"]) for r in rows
            if "count" not in r]  # fmt: skip
    assert said[0] == ("allowed", "olga@example.com", "oidc", "pause", scope)
    assert said[-1] == ("allowed", "olga@example.com", "oidc", "resume", scope)
    # global, task:*, the fleet-wide task:..._load, and the cancels of a hidden and an
    # unknown run folded in one row
    assert sum(r[:2] == ("refused", "olga@example.com") for r in said) == 4
