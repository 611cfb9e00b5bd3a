"""A team's dashboard over real HTTP, engines on a real broker: a viewer who opens 16 live
streams gets her own share and her excess refused, and the operator's stream, opened first,
goes on and still shows a run that starts afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from cascade.cli.plumbing import BrokerOptions, mqtt_connector
from cascade.connectors.mqtt import MqttConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardSettings, Tokens, serve_dashboard
from cascade.runtime import Engine, RunStarted, task
from cascade.testkit import BrokerEndpoint, free_port

ROLES = """
[[grant]]
role = "operator"
scopes = ["org:acme"]
people = ["olga"]

[[grant]]
role = "viewer"
scopes = ["org:acme"]
people = ["vera"]
"""
OLGA = {"Authorization": "Bearer olga-secret"}
VERA = {"Authorization": "Bearer vera-secret"}


@contextlib.asynccontextmanager
async def team_dashboard(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> AsyncIterator[str]:
    """`cascade dashboard --roles` with a ``--token`` for an operator and one for a viewer."""
    path = tmp_path / "roles.toml"
    path.write_text(ROLES, encoding="utf-8")
    port = free_port()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port)
    serving = asyncio.create_task(
        serve_dashboard(
            DashboardSettings(
                connector=lambda: mqtt_connector(options),
                port=port,
                token=Tokens.parse(["olga=olga-secret", "vera=vera-secret"], "dash"),
                say=Console(record=True, width=200).print,
                on_ready=ready.set_result,
                roles=Roles.load(path),
            )
        )
    )
    try:
        await asyncio.wait_for(asyncio.shield(ready), 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


class Stream:
    """One open change stream, read event by event."""

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.http, self.url, self.headers = http, url, headers
        self.stack = contextlib.AsyncExitStack()

    async def open(self) -> httpx.Response:
        request = self.http.stream("GET", f"{self.url}/api/stream",
                                   params={"since": "0"}, headers=self.headers)  # fmt: skip
        self.response = await self.stack.enter_async_context(request)
        self.lines = self.response.aiter_lines()
        if self.response.status_code == 200:
            await self.next("snapshot")
        else:
            await self.response.aread()
        return self.response

    async def next(self, kind: str) -> dict[str, Any]:
        event = ""
        async for line in self.lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == kind:
                data: dict[str, Any] = json.loads(line[6:])
                return data
        raise EOFError("the stream ended")


async def a_run(mqtt_broker: BrokerEndpoint) -> str:
    """One run of one task in acme/etl, to its end; its id."""

    @task(name="fair_share_step")
    async def step() -> str:
        return "ok"

    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port)
    engine = Engine(connector, org_id="acme", project_id="etl", summaries=False)
    started: list[str] = []
    engine.events.subscribe(
        lambda e: started.append(e.run_id) if isinstance(e, RunStarted) else None
    )
    await engine.run(step())
    return started[0]


async def test_a_viewers_16_streams_never_end_the_operators(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    async with (
        team_dashboard(mqtt_broker, tmp_path) as url,
        httpx.AsyncClient(timeout=10) as http,
        contextlib.AsyncExitStack() as streams,
    ):
        olga = Stream(http, url, OLGA)
        streams.push_async_callback(olga.stack.aclose)
        assert (await olga.open()).status_code == 200
        viewers = [Stream(http, url, VERA) for _ in range(16)]  # each held: none goes
        for stream in viewers:
            streams.push_async_callback(stream.stack.aclose)
        answers = [await stream.open() for stream in viewers]
        run_id = await a_run(mqtt_broker)
        seen: list[str] = []
        while run_id not in seen:  # the operator's stream goes on: the new run arrives
            data = await asyncio.wait_for(olga.next("delta"), 10)
            seen += [run["run_id"] for run in data.get("runs", {}).get("upsert", [])]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * 8 + [429] * 8
    refused = answers[-1]
    assert refused.headers["retry-after"] == "2"
    assert "too many live streams of yours" in refused.json()["error"]
