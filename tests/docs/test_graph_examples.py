"""docs/protocol.md, "A run's graph": its JSON is what an engine sends for that workflow."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message
from cascade.interfaces.graphs import check_graph
from cascade.runtime import Engine, task

from .examples import ROOT


def _section_json() -> list[str]:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    start = page.index("### A run's graph")
    section = page[start : page.index("\n### ", start + 1)]
    return re.findall(r"^```json\n(.*?)\n```$", section, re.M | re.S)


@task
def extract() -> list[int]:
    return [1, 2]


@task
def healthy() -> bool:
    return True


@task
def clean(row: int) -> int:
    return row


@task
def load(rows: list[int]) -> int:
    return len(rows)


async def _sent_start() -> dict[str, Any]:
    broker, sent = InMemoryBroker(), list[Message]()
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe("cascade/telemetry/+/+/+/events", sent.append)
        engine = Engine(InMemoryConnector(broker, source_id="docs"), heartbeat_interval=None)
        await engine.run(load(clean.map(row=extract())).run_if(healthy()), name="etl")
        await broker.idle()
    bodies = [json.loads(message.raw)["body"] for message in sent]
    (start,) = [body for body in bodies if body.get("event") == "ENGINE_STARTED"]
    started: dict[str, Any] = start
    return started


def _by_name(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with each task id as its task's name (an engine numbers its ids by process)."""
    names = {node["id"]: node["name"] for node in body["graph"]["nodes"]}
    nodes = [
        {
            **node,
            "id": node["name"],
            "after": sorted(names[i] for i in node["after"]),
            **(
                {"conditions": [names[i] for i in node["conditions"]]}
                if "conditions" in node
                else {}
            ),
        }
        for node in body["graph"]["nodes"]
    ]
    return {**body, "graph": {"nodes": sorted(nodes, key=lambda node: node["id"])}}


def test_the_graph_example_is_what_an_engine_sends() -> None:
    (shown,) = _section_json()
    example = json.loads(shown)
    check_graph(example["graph"])  # a reader takes it
    assert _by_name(asyncio.run(_sent_start())) == _by_name(example)
