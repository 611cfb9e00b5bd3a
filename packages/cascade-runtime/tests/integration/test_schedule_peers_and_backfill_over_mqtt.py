"""A schedule's servers over a real mosquitto: another org's announcement of a same-named
schedule does not hold ours back, and a backfill a full server refuses as busy leaves its
slots for asking again (issue 80)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta, timezone
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces.serving import (
    ServedAnnouncement,
    ServedRun,
    ServedWorkflow,
    served_topic,
)
from cascade.runtime import Engine, RunStarted, Schedule, task
from cascade.runtime.testing import eventually
from cascade.testkit import MosquittoBroker

UTC = timezone.utc


@task(name="tick")
def tick() -> int:
    return 1


@contextlib.asynccontextmanager
async def serving(
    engine: Engine, workflows: Mapping[str, Callable[..., Any]], **options: Any
) -> AsyncIterator[list[RunStarted]]:
    """``engine.serve(...)`` in a task, cancelled at the end; the runs it started."""
    started: list[RunStarted] = []
    engine.events.subscribe(lambda e: started.append(e) if isinstance(e, RunStarted) else None)
    served = asyncio.create_task(engine.serve(workflows, **options))
    try:
        yield started
    finally:
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served


def _connector(broker: MosquittoBroker, prefix: str, source: str) -> MqttConnector:
    return MqttConnector(broker.host, broker.port, topic_prefix=prefix, source_id=source)


async def test_another_orgs_live_run_of_a_same_named_schedule_does_not_skip_ours(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """globex announces, on its own topic, a live run of its schedule `tick`; so does a
    server of acme/etl's other workflow: acme/etl's `tick` (overlap skip) fires every slot."""
    engine = Engine(
        _connector(mosquitto_broker, prefix, "acme-1"),
        heartbeat_interval=None,
        org_id="acme",
        project_id="etl",
    )
    async with _connector(mosquitto_broker, prefix, "globex-1") as globex:
        for org, project, source, workflow in [
            ("globex", "etl", "globex-1", "tick"),  # another org's schedule of that name
            ("acme", "etl", "acme-other", "other"),  # a schedule `tick` of another workflow
        ]:
            live = ServedAnnouncement(
                source=source, org_id=org, project_id=project, capacity=1,
                workflows=[ServedWorkflow(name=workflow)],
                live=[ServedRun(run_id=f"{source}-run", workflow=workflow, schedule="tick")],
            )  # fmt: skip
            topic = served_topic(org, project, source, prefix)
            await globex.publish(topic, live, qos=1, retain=True)
        every = Schedule(every=timedelta(seconds=1), overlap="skip", catchup="none")
        async with serving(engine, {"tick": tick}, schedules={"tick": every}):
            stats = engine.stats
            await eventually(lambda: stats.slots_fired + stats.slots_skipped >= 4, timeout=20)
        for source, org in [("globex-1", "globex"), ("acme-other", "acme")]:
            await globex.publish(served_topic(org, "etl", source, prefix), b"", retain=True)
    assert (stats.slots_skipped, stats.slots_fired >= 4) == (0, True), stats
