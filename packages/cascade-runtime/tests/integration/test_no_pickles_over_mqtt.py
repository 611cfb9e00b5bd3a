"""What comes through the broker is never unpickled: pickles published on every topic an engine
listens on (running a run, or serving), while its task runs in a worker process, are rejected as
what they are (no JSON object) and nothing in them runs; pickles travel only between an engine
and its own workers."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pickle
from collections.abc import Collection, Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import aiomqtt
import msgspec
import pytest

from cascade.connector_kit import Subscription
from cascade.interfaces import status_topic
from cascade.interfaces.serving import StartRequest, addressed_start_topic
from cascade.runtime import Engine, ProcessExecutor, Schedule, TaskCompleted, TaskRunning
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import BrokerEndpoint, broker_family

from .listening import Listening

WORKERS = Path(__file__).parent.parent / "workers"


class Armed:
    """Unpickled, it creates ``marker``: proof that whoever read it unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def tasks() -> Iterator[ModuleType]:
    """The tasks workers run, from a module they can import (its folder on sys.path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        yield importlib.import_module("cascade_worker_tasks")


def concrete(topic_filter: str) -> str:
    """A topic ``topic_filter`` matches: each wildcard level a level of its own."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    return "/".join("x" if level in ("+", "#") else level for level in topic_filter.split("/"))


async def test_pickles_published_on_every_topic_an_engine_hears_are_never_loaded(
    mqtt_broker: BrokerEndpoint, prefix: str, tmp_path: Path, tasks: ModuleType
) -> None:
    marker = tmp_path / "unpickled"
    armed = [pickle.dumps(Armed(marker), protocol=p) for p in (0, pickle.HIGHEST_PROTOCOL)]
    connector = Listening(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-pickles"
    )
    recorder = EventRecorder()
    with ProcessExecutor(1) as processes:
        engine = Engine(connector, executor=processes, heartbeat_interval=None)
        engine.events.subscribe(recorder)
        run = asyncio.create_task(engine.run(tasks.waits(str(tmp_path), 1)))
        try:
            await recorder.until(lambda: bool(recorder.names(TaskRunning)))
            # its commands' subscription may come after its first task starts (NATS)
            await eventually(lambda: any("/command/" in f for f in connector.filters()))
            held = connector.listened()
            topics = sorted({concrete(s.topic_filter) for s in held})
            heard = {t.removeprefix(f"{prefix}/").split("/")[0] for t in topics}
            assert heard >= {"command", "constraints"}, topics
            async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as attacker:
                for topic in topics:
                    for payload in armed:
                        await attacker.publish(topic, payload, qos=1)
            await all_rejected(connector, held, len(armed), prefix)
            (tmp_path / "release").touch()
            assert await asyncio.wait_for(run, 60) == 1
        finally:
            run.cancel()
    assert not marker.exists()


async def all_rejected(
    connector: Listening,
    held: list[Subscription],
    armed: int,
    prefix: str,
    kinds: Collection[str] = ("command", "constraints"),
) -> None:
    """Wait until ``armed`` pickles on each topic of ``held`` still listened to were rejected.
    A subscription let go meanwhile is left out: where retained messages are read only through
    exact topics (RabbitMQ), the constraints' index and the global scope are read so and let
    go, and a pickle published after is not heard (nor loaded)."""
    kept: set[str] = set()

    def done() -> bool:
        kept.clear()
        kept.update(concrete(s.topic_filter) for s in held if s.active)
        return connector.stats.rejected >= len(kept) * armed

    try:
        await eventually(done)
    except AssertionError:
        raise AssertionError(
            f"rejected {connector.stats.rejected} of {len(kept) * armed} on {sorted(kept)}"
        ) from None
    heard = {t.removeprefix(f"{prefix}/").split("/")[0] for t in kept}
    assert heard >= set(kinds), sorted(kept)


async def test_pickles_published_on_every_topic_a_served_engine_hears_are_never_loaded(
    mqtt_broker: BrokerEndpoint, prefix: str, tmp_path: Path, tasks: ModuleType
) -> None:
    """An engine under ``serve`` (a schedule of its own, so its peers' statuses, its slots'
    claims and pauses too; the shared start topic where the broker has one) with a served run
    in a worker process: pickles on its start requests, announcements, statuses, claims, pauses,
    its own status and its run's topics are rejected, and nothing in them runs."""
    marker = tmp_path / "unpickled"
    armed = [pickle.dumps(Armed(marker), protocol=p) for p in (0, pickle.HIGHEST_PROTOCOL)]
    source = "it-served-pickles"
    connector = Listening(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id=source)
    recorder = EventRecorder()

    def workflow() -> Any:
        return tasks.waits(str(tmp_path), 1)

    with ProcessExecutor(1) as processes:
        engine = Engine(connector, executor=processes, heartbeat_interval=None, connect_wait=1.0)
        engine.events.subscribe(recorder)
        schedules = {"hourly": Schedule(every=timedelta(hours=1), workflow="waits")}
        served = asyncio.create_task(engine.serve({"waits": workflow}, schedules=schedules))
        try:
            start_on = addressed_start_topic(
                engine.org_id, engine.project_id, "waits", source, prefix
            )
            await eventually(lambda: any("/start/" in f for f in connector.filters()))
            async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as attacker:
                start = StartRequest(id="s-1", workflow="waits")
                await attacker.publish(start_on, msgspec.json.encode(start), qos=1)
                await recorder.until(lambda: bool(recorder.names(TaskRunning)))
                # every subscription made: serving takes start requests first, and each of
                # the rest (peers, statuses, claims, its run's commands) may come after its
                # run starts (NATS makes one subscription at a time, each a JetStream consumer)
                expected = {"start", "served", "status", "schedule", "command"}

                def kinds() -> set[str]:
                    topics = {concrete(f) for f in connector.filters()}
                    return {t.removeprefix(f"{prefix}/").split("/")[0] for t in topics}

                try:
                    await eventually(lambda: kinds() >= expected)
                    if broker_family() == "mosquitto":  # its shared start topic, once found
                        await eventually(
                            lambda: any(f.startswith("$share/") for f in connector.filters())
                        )
                except AssertionError:
                    raise AssertionError(f"heard {connector.filters()}") from None
                held = connector.listened()
                topics = sorted({concrete(s.topic_filter) for s in held})
                own = [status_topic(source, prefix)]  # the connector's own, read beside these
                for topic in own + topics:
                    for payload in armed:
                        await attacker.publish(topic, payload, qos=1)
            await all_rejected(connector, held, len(armed), prefix, expected)
            (tmp_path / "release").touch()
            await recorder.until(lambda: bool(recorder.names(TaskCompleted)))
        finally:
            served.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await served
    assert not marker.exists()
    assert engine.stats.runs == 1  # the forged start requests started nothing
