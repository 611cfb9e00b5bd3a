"""Identities a broker vouches for: with the ACLs docs/acl/ ships (mosquitto's acl_file, and
RabbitMQ's topic permissions), an engine publishes telemetry, statuses and answers only as
itself, only operators write clear notes and cancels, and nobody but engines reads commands.
Each forgery is refused by the broker itself; what a login may write as itself but claims
another source for is refused by the readers."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, events_topic, status_filter, telemetry_filter
from cascade.interfaces.commands import cancel_topic, decide_topic, reply_filter, reply_topic
from cascade.interfaces.logs import logs_filter
from cascade.reader import REASON_MISMATCH, ReaderModel
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import (
    MOSQUITTO_ONLY,
    Inbox,
    MosquittoBroker,
    only_on_family,
    skip_on_family,
)

from .acl_logins import Logins, acl_rabbitmq
from .acl_logins import acl_mosquitto as acl_mosquitto_of

ACL_DIR = Path(__file__).resolve().parents[4] / "docs" / "acl"
USERS = ("engine-1", "engine-2", "alice", "viewer", "mallory")
ORG, PROJECT = "acme", "shop"
CLEARED = "cascade/cleared/task/nightly/pause"


@pytest.fixture
def acl_mosquitto() -> Iterator[MosquittoBroker]:
    with acl_mosquitto_of((ACL_DIR / "mosquitto.acl").read_text(), USERS) as broker:
        yield broker


def _envelope(run_id: str, source: str, seq: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": "1.0",
        "ts": datetime.now(timezone.utc).isoformat(),
        "run_id": run_id,
        "org_id": ORG,
        "project_id": PROJECT,
        "source": source,
        "seq": seq,
        "body": body,
    }


async def _not_taken(connector: MqttConnector, topic: str, payload: Any) -> None:
    """Publish what the ACL denies: the broker refuses it (an MQTT 5 PUBACK says so), or
    RabbitMQ closes the connection each time until the connector gives it up."""
    before = connector.stats.refused + connector.stats.dropped
    await connector.publish(topic, payload, qos=1)
    await connector.flush(30)
    assert connector.stats.refused + connector.stats.dropped == before + 1


async def _forgeries_are_refused(logins: Logins) -> None:
    """Another engine writes telemetry, an answer, a status and a summary as engine-1, a clear
    note, a cancel and a decision; a reader subscribes to commands and writes an answer: the
    broker takes none of it. What engine-2 may write, its own level with engine-1 in the
    payload, readers refuse."""
    run_id = uuid.uuid4().hex
    started = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1}
    forged = _envelope(run_id, "engine-1", 1, started)
    note = {"issued_by": "alice", "reason": "approved change ticket 42", "issued_at": 1.0}
    answer = {"id": "req-1", "run_id": run_id, "source": "engine-1", "outcome": "cancelled"}
    seen, commands = Inbox(), Inbox()
    async with (
        logins.login("viewer") as viewer,
        logins.login("mallory") as mallory,
        logins.login(
            "mallory", "mallory-2"
        ) as snoop,  # on RabbitMQ, a denied subscription ends its link
    ):
        for topic_filter in (telemetry_filter(), status_filter(), "cascade/cleared/#",
                             reply_filter()):  # fmt: skip
            await viewer.subscribe(topic_filter, seen)
        await snoop.subscribe("cascade/command/+/+/+/cancel", commands)
        async with logins.login("engine-2") as eve:
            sourced = events_topic(ORG, PROJECT, run_id, source="engine-1")
            for topic, payload in (
                (sourced, forged),  # telemetry as another source
                (events_topic(ORG, PROJECT, run_id), forged),  # the unsourced layout
                (reply_topic("local", "req-1", "engine-1"), answer),  # an answer as another engine
                ("cascade/status/engine-1", {"source": "engine-1", "status": "offline"}),
                ("cascade/summary/engine-1", {"source": "engine-1", "runs": {"running": 9}}),
                (f"cascade/logs/{ORG}/{PROJECT}/{run_id}/engine-1", {"seq": 1}),  # its logs
                (CLEARED, note),  # a clear note: operators only
                (
                    cancel_topic(ORG, PROJECT, run_id),
                    {"id": "req-2", "run_id": run_id},
                ),  # operators
                (decide_topic(ORG, PROJECT, run_id), {"id": "req-4", "run_id": run_id}),  # only
            ):
                await _not_taken(eve, topic, payload)
            own_level = events_topic(ORG, PROJECT, run_id, source="engine-2")
            await eve.publish(own_level, forged, qos=1)  # taken: engine-2 may write its own
            await eve.flush(30)
            assert eve.stats.published == 1
        await _not_taken(mallory, reply_topic("local", "req-1", "engine-1"), answer)
        await _not_taken(mallory, CLEARED, note)
        async with logins.login("alice") as alice:  # the operator's cancel: no engine runs it
            request = {"id": "req-3", "run_id": run_id}
            await alice.publish(cancel_topic(ORG, PROJECT, run_id), request, qos=1)
            decision = {"id": "req-5", "run_id": run_id, "task": "load", "decision": "retry"}
            await alice.publish(decide_topic(ORG, PROJECT, run_id), decision, qos=1)
            await alice.publish(CLEARED, {**note, "reason": "the real one"}, qos=1)
            await alice.flush(10)
            assert alice.stats.refused == alice.stats.dropped == 0
        while not {own_level, CLEARED} <= {m.topic for m in seen.all}:
            await seen.next()
    assert commands.all == []  # mallory read no command, the operator's included
    assert sorted(m.topic for m in seen.all) == sorted([own_level, CLEARED])
    assert [m.payload["reason"] for m in seen.all if m.topic == CLEARED] == ["the real one"]
    state = ReaderModel()
    for message in seen.all:
        state.apply(message)
    assert state.runs == {}
    assert state.refusals.describe("engine-2") == f"1 {REASON_MISMATCH}"


async def _engine_answers_only_as_itself(logins: Logins, scope: str) -> None:
    """engine-1 on the sourced layout is watched and cancelled by the operator as usual; its
    answer names it, on its own topic."""

    @task(name=scope)
    async def waits() -> None:
        await asyncio.Event().wait()

    engine = Engine(logins.connector("engine-1", presence=True, sourced_topics=True),
                    org_id=ORG, project_id=PROJECT, heartbeat_interval=None)  # fmt: skip
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    seen = Inbox()
    async with logins.login("viewer") as viewer:
        await viewer.subscribe(telemetry_filter(), seen)
        await viewer.subscribe(reply_filter(), seen)
        run = asyncio.create_task(engine.run(waits()))
        await recorder.until(lambda: bool(recorder.names(TaskRunning)))
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        said = await asyncio.to_thread(logins.cascade, "alice", "cancel", started.run_id)
        assert said.exit_code == 0, said.output
        assert f"cancelled run {started.run_id} on engine-1" in said.stdout
        with pytest.raises(RunCancelledError):
            await asyncio.wait_for(run, 10)
        answer: Message = await seen.until(lambda m: "/reply/" in m.topic)
        await seen.until(lambda m: m.payload.get("body", {}).get("event") == "ENGINE_STOPPED")
    assert answer.topic.endswith("/engine-1")
    assert {m.topic.rsplit("/", 1)[-1] for m in seen.all} == {"engine-1"}
    state = ReaderModel(ask=lambda run_id, after: None)
    state.request_snapshot(started.run_id, 0, "engine-1")  # as `cascade cancel` asked it
    for message in seen.all:
        state.apply(message)
    assert state.runs[started.run_id].source == "engine-1"
    assert state.refusals.total == 0


async def _only_operators_and_engines_send_signals(logins: Logins) -> None:
    """A run of engine-1 waits on ``cs.recv``: the viewer's signal is refused by the broker,
    the operator's wakes it (an engine of the org may send one too)."""
    import cascade.runtime as cs

    @cs.task
    def deploy(approval: dict[str, str]) -> str:
        return f"deployed, approved by {approval['by']}"

    topic = f"cascade/signal/{ORG}/{PROJECT}/approvals/deploy"
    engine = Engine(logins.connector("engine-1", presence=True, sourced_topics=True),
                    org_id=ORG, project_id=PROJECT, heartbeat_interval=None)  # fmt: skip
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(deploy(cs.recv("approvals/deploy", timeout=60))))
    try:
        await recorder.until(lambda: bool(recorder.names(TaskRunning)))  # recv subscribed
        async with logins.login("mallory") as mallory:
            await _not_taken(mallory, topic, {"by": "mallory"})
        async with logins.login("engine-2") as other:
            await other.publish(f"{topic}-too", {"by": "engine-2"}, qos=1)
            await other.flush(10)
            assert other.stats.refused == other.stats.dropped == 0
        async with logins.login("alice") as alice:
            await alice.publish(topic, {"by": "alice"}, qos=1)
            await alice.flush(10)
            assert alice.stats.refused == alice.stats.dropped == 0
        assert await asyncio.wait_for(run, 30) == "deployed, approved by alice"
    finally:
        run.cancel()


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_mosquittos_acl_refuses_every_forgery(
    acl_mosquitto: MosquittoBroker, scope_name: str
) -> None:
    """docs/acl/mosquitto.acl, as written, on a real mosquitto (MQTT 5: each refusal said)."""
    logins = Logins(acl_mosquitto)
    await _forgeries_are_refused(logins)
    await _engine_answers_only_as_itself(logins, scope_name)
    await _only_operators_and_engines_send_signals(logins)


async def _one_run(logins: Logins, scope: str, *, sourced: bool) -> tuple[str, int]:
    """engine-1 runs one task that logs a line, on a connector with ``sourced_topics`` as
    given: the run's id and how many of its messages the broker refused."""

    @task(name=scope)
    async def logs_a_line() -> int:
        logging.getLogger(scope).warning("loaded %d rows", 1)
        return 1

    connector = logins.connector("engine-1", presence=True, sourced_topics=sourced)
    await connector.connect(require=True)
    try:
        engine = Engine(connector, org_id=ORG, project_id=PROJECT, heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        assert await engine.run(logs_a_line()) == 1  # refused or not, the run is the same
        await connector.flush(30)  # each QoS 1 message taken, or refused (MQTT 5 says so)
    finally:
        await connector.disconnect()
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    return started.run_id, connector.stats.refused


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_only_the_connectors_sourced_layout_gets_an_engines_runs_past_the_acl(
    acl_mosquitto: MosquittoBroker, scope_name: str
) -> None:
    """Under docs/acl/mosquitto.acl the engine's login may publish only on topics that name
    it: on a connector without ``sourced_topics`` its run's start and end are refused and
    its task events and log lines dropped (the run itself unharmed), nothing reaching a
    reader; the same engine on ``MqttConnector(..., sourced_topics=True)`` is heard whole,
    its telemetry and its log lines, each on a topic that names it."""
    logins = Logins(acl_mosquitto)
    seen = Inbox()
    try:
        async with logins.login("viewer") as viewer:
            await viewer.subscribe(telemetry_filter(), seen)
            await viewer.subscribe(logs_filter(), seen)
            plain, refused = await _one_run(logins, scope_name, sourced=False)
            assert refused >= 2  # ENGINE_STARTED and ENGINE_STOPPED, at QoS 1
            sourced, refused = await _one_run(logins, scope_name, sourced=True)
            assert refused == 0
            await seen.until(lambda m: "/logs/" in m.topic)
            await seen.until(lambda m: m.payload.get("body", {}).get("event") == "ENGINE_STOPPED")
    finally:
        acl_mosquitto.close()
    # what the broker took from the first connection came before the second's: none of it
    assert {m.payload.get("run_id") for m in seen.all} == {sourced}
    assert {m.topic.rsplit("/", 1)[-1] for m in seen.all} == {"engine-1"}
    (batch,) = [m for m in seen.all if "/logs/" in m.topic]
    assert [line["message"] for line in batch.payload["lines"]] == ["loaded 1 rows"]
    state = ReaderModel()
    for message in seen.all:
        state.apply(message)
    assert state.runs[sourced].confirmed  # its topic vouches for its source
    assert plain not in state.runs


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
async def test_rabbitmqs_topic_permissions_refuse_every_forgery(scope_name: str) -> None:
    """docs/acl/rabbitmq-definitions.json, as written, on a real RabbitMQ node."""
    definitions: dict[str, Any] = json.loads((ACL_DIR / "rabbitmq-definitions.json").read_text())
    assert {p["user"] for p in definitions["topic_permissions"]} == set(USERS)
    with acl_rabbitmq(definitions, USERS) as broker:
        logins = Logins(broker)
        await _forgeries_are_refused(logins)
        await _only_operators_and_engines_send_signals(logins)
        await _engine_answers_only_as_itself(logins, scope_name)
