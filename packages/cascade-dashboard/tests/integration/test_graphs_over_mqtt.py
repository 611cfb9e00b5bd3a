"""A run's graph end to end on a real broker (the family's: mosquitto by default): a real engine
runs a five-task ETL with a map and a run_if; the dashboard's live model (a reader) and a
recorder's history have its graph with the right edges, and ``/api/runs/{id}/graph`` answers
it from the live model, and from the history for a dashboard that never heard the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.cli.plumbing import BrokerOptions, mqtt_connector
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.connectors.mqtt import MqttConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Recorder
from cascade.interfaces.graphs import RunGraph
from cascade.runtime import Engine, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint

WAIT = 20.0


@pytest.fixture
async def hub(mqtt_broker: BrokerEndpoint) -> AsyncIterator[DashboardHub]:
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port, timeout=5.0)
    hub = DashboardHub(mqtt_connector(options), timeout=5.0)
    await hub.start()
    yield hub
    await hub.stop()


async def until(check: Callable[[], Any], what: str) -> Any:
    """``check()``'s first truthy value (no event says when a broker delivered, nor when a
    recorder's batch is written)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {WAIT:g} s: {what}")


def edges(nodes: list[dict[str, Any]]) -> dict[str, tuple[list[str], bool, list[str]]]:
    """Each node by its task's name: the names of what it runs after (sorted), whether it is
    a map, the names of its conditions."""
    names = {node["id"]: node["name"] for node in nodes}
    return {
        node["name"]: (
            sorted(names[i] for i in node["after"]),
            node.get("map", False),
            [names[i] for i in node.get("conditions", [])],
        )
        for node in nodes
    }


def as_json(graph: RunGraph | None) -> list[dict[str, Any]]:
    assert graph is not None
    return [
        {"id": n.id, "name": n.name, "after": n.after, "map": n.map, "conditions": n.conditions}
        for n in graph.nodes
    ]


async def test_an_etls_graph_reaches_the_reader_the_history_and_the_api(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    @task(name=f"extract_{scope_name}")
    def extract() -> list[int]:
        return [1, 2, 3]

    @task(name=f"check_{scope_name}")
    def check(rows: list[int]) -> bool:
        return len(rows) > 0

    @task(name=f"clean_{scope_name}")
    def clean(row: int) -> int:
        return row * 2

    @task(name=f"transform_{scope_name}")
    def transform(rows: list[int]) -> int:
        return sum(rows)

    @task(name=f"load_{scope_name}")
    def load(total: int) -> str:
        return f"loaded {total}"

    rows = extract()
    loaded = load(transform(clean.map(row=rows))).run_if(check(rows))
    expected = {
        f"extract_{scope_name}": ([], False, []),
        f"check_{scope_name}": ([f"extract_{scope_name}"], False, []),
        f"clean_{scope_name}": ([f"extract_{scope_name}"], True, []),
        f"transform_{scope_name}": ([f"clean_{scope_name}"], False, []),
        f"load_{scope_name}": (
            sorted([f"check_{scope_name}", f"transform_{scope_name}"]),
            False,
            [f"check_{scope_name}"],
        ),
    }
    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id="it-graph"))
    events = EventRecorder()
    engine.events.subscribe(events)
    history = History(f"sqlite:///{tmp_path / 'h.sqlite3'}", mode="write")
    listening = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    live_app = create_app(hub, DashboardSettings())
    async with listening, Recorder(listening, history) as recorder:
        assert await engine.run(loaded) == "loaded 12"
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        run_id = started.run_id

        # the reader: the dashboard's live model, fed by the broker
        heard = await until(lambda: hub.model.state.runs.get(run_id), "the dashboard hears it")
        await until(lambda: heard.graph is not None, "the live model has the run's graph")
        assert edges(as_json(heard.graph)) == expected
        ran = {e.task_id for e in events.events if isinstance(e, TaskRunning)}
        assert {n.id for n in heard.graph.nodes} == {t for t in ran if "[" not in t}  # same ids

        # the history: what the recorder wrote
        async def recorded() -> Any:
            await recorder.flush(timeout=5)
            return await asyncio.to_thread(history.graph, run_id)

        deadline = time.monotonic() + WAIT
        while (kept := await recorded()) is None:
            assert time.monotonic() < deadline, "the history did not get the run's graph"
            await asyncio.sleep(0.05)
        assert edges(as_json(kept.graph)) == expected

        # the API: from the live model, by a prefix
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=live_app),
                                     base_url="http://127.0.0.1") as http:  # fmt: skip
            live = await http.get(f"/api/runs/{run_id[:12]}/graph")
        assert live.status_code == 200, live.text
        assert live.json()["run_id"] == run_id
        assert edges(live.json()["nodes"]) == expected

    # a dashboard that never heard the run: from the history
    deaf = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    await deaf.start()
    try:
        app = create_app(deaf, DashboardSettings(history=history))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as http:  # fmt: skip
            past = await http.get(f"/api/runs/{run_id}/graph")
    finally:
        await deaf.stop()
        history.close()
    assert past.status_code == 200, past.text
    assert edges(past.json()["nodes"]) == expected
