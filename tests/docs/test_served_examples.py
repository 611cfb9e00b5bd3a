"""docs/protocol.md, "Served workflows": its JSON is what a serving engine announces, takes and
answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import msgspec

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces.serving import StartRequest, decode_served, decode_start_reply, served_topic
from cascade.runtime import Engine, task

from .examples import ROOT


def _section_json() -> list[str]:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    start = page.index("## Served workflows")
    section = page[start : page.index("\n## ", start + 1)]
    return re.findall(r"^```json\n(.*?)\n```$", section, re.M | re.S)


@task(name="load")
def load(day: str, limit: int) -> int:
    return limit


def nightly(day: str, limit: int = 10) -> Any:
    """The nightly load."""
    return load(day, limit)


async def _announced() -> dict[str, Any]:
    """What an engine serving ``nightly`` announces (as org acme, project etl)."""
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id="etl-1"), org_id="acme", project_id="etl")
    serving = asyncio.create_task(engine.serve({"nightly": nightly}))
    arrived = asyncio.Event()
    try:
        async with InMemoryConnector(broker, presence=False) as reader:
            await reader.subscribe(served_topic("acme", "etl", "etl-1"), lambda m: arrived.set())
            await asyncio.wait_for(arrived.wait(), 10)
            raw = broker.retained(served_topic("acme", "etl", "etl-1"))
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    assert raw is not None
    shown: dict[str, Any] = json.loads(raw)
    return shown


async def test_the_served_examples_are_the_wire() -> None:
    announcement, request, started, planned = _section_json()
    shown = decode_served(announcement)
    sent = await _announced()
    assert msgspec.to_builtins(shown.workflows) == sent["workflows"]
    assert (shown.source, shown.org_id, shown.project_id) == (
        sent["source"],
        sent["org_id"],
        sent["project_id"],
    )
    # a run live in the example, shared found: fields the first announcement leaves out
    assert set(json.loads(announcement)) == set(sent) | {"live", "running", "shared"}
    asked = msgspec.json.decode(request, type=StartRequest)
    assert (asked.workflow, asked.params, asked.issued_by) == ("nightly", {"day": "mon"}, "alice")
    answer = decode_start_reply(started)
    assert answer.started
    assert answer.id == asked.id
    plan = decode_start_reply(planned)
    assert plan.outcome == "planned"
    assert [(p.task_name, p.action) for p in plan.plan] == [
        ("extract", "reuse"),
        ("transform", "run"),
        ("load", "run"),
    ]
    assert plan.plan_count == len(plan.plan)
