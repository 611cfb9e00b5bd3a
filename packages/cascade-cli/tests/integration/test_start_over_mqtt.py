"""`cascade served`, `start` and `rerun` and ``Controller.start`` against a real broker
(mosquitto, or RabbitMQ with ``CASCADE_TEST_BROKER=rabbitmq``) and processes serving workflows
(testkit's ServingEngine): through the shared subscription where the broker has them
(mosquitto), addressed to the least busy where it has not (RabbitMQ)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import msgspec
import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller, NobodyServesError, RunEnds, wait_run
from cascade.interfaces import Envelope, LifecycleEvent, Message, events_topic
from cascade.interfaces.serving import (
    PlanStep,
    ServedAnnouncement,
    ServedWorkflow,
    WorkflowParam,
    served_topic,
)
from cascade.testkit import BrokerEndpoint, KeptRun, ServingEngine

OLD = "58a88765cea2c1d0a1f3c2b7e9d84a61"
Serve = Callable[..., Awaitable[ServingEngine]]


def cascade(broker: BrokerEndpoint, *args: str, timeout: str = "10") -> Result:
    """`cascade ARGS` in-process against ``broker``."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", timeout]
    return CliRunner().invoke(app, [*args, *address])


@pytest.fixture
def workflow(scope_name: str) -> ServedWorkflow:
    """A workflow name of the test's own (the broker is shared with other tests)."""
    return ServedWorkflow(name=scope_name, params=[WorkflowParam(name="day", annotation="str")])


@pytest.fixture
async def serve(
    mqtt_broker: BrokerEndpoint, workflow: ServedWorkflow, scope_name: str
) -> AsyncIterator[Serve]:
    """Start a serving process (source ``{scope_name}-{n}``) that serves ``workflow``, through
    the shared subscription where the broker has them; each is stopped (its announcement
    cleared) after the test."""
    engines: list[ServingEngine] = []

    async def make(**options: object) -> ServingEngine:
        source = f"{scope_name}-{len(engines) + 1}"
        connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await connector.connect(require=True)
        shared = {"shared": mqtt_broker.is_mosquitto}
        engine = ServingEngine(connector, [workflow], **{**shared, **options})  # type: ignore[arg-type]
        await engine.start()
        await connector.flush(10)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()
        await engine.connector.disconnect()


@pytest.mark.parametrize("end", ["Succeeded", "Failed"])
async def test_served_then_start_and_wait(
    mqtt_broker: BrokerEndpoint,
    serve: Serve,
    workflow: ServedWorkflow,
    end: Literal["Succeeded", "Failed"],
) -> None:
    """`served` lists the process; `start --wait` is answered with a run id, and exits with
    the run's outcome."""
    engine = await serve(end=end)
    listed = await asyncio.to_thread(cascade, mqtt_broker, "served", "--json")
    assert listed.exit_code == 0, listed.output
    (mine,) = [s for s in json.loads(listed.stdout)["served"] if s["source"] == engine.source]
    assert mine["online"] is True
    assert mine["shared"] is mqtt_broker.is_mosquitto
    assert [w["name"] for w in mine["workflows"]] == [workflow.name]
    started = await asyncio.to_thread(
        cascade, mqtt_broker, "start", workflow.name, "-p", "day=mon", "--wait", "--reason", "it"
    )
    assert started.exit_code == (0 if end == "Succeeded" else 1), started.output
    ((run_id, request),) = engine.started
    assert started.stdout == (
        f"started {workflow.name} as run {run_id[:12]} on {engine.source}\n"
        f"run {run_id[:12]} {end}\n"
    )
    assert (request.params, request.reason) == ({"day": "mon"}, "it")


async def test_each_request_is_taken_by_one_of_two_servers(
    mqtt_broker: BrokerEndpoint, serve: Serve, workflow: ServedWorkflow
) -> None:
    """Two processes serve the workflow: each of 4 starts is started once, by one of them
    (the broker gives it to one through the shared subscription, or it is addressed to the
    least busy: runs left live make both busy in turn)."""
    first, second = await serve(end=None), await serve(end=None)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as connector:
        control = Controller(connector, issued_by="it", timeout=10.0)
        replies = [await control.start(workflow.name, {"day": str(n)}) for n in range(4)]
    assert all(reply.started for reply in replies)
    taken = [request.id for _, request in first.started + second.started]
    assert sorted(taken) == sorted(reply.id for reply in replies)
    by = {reply.id: reply.source for reply in replies}
    assert {by[r.id] for _, r in first.started} <= {first.source}
    assert {by[r.id] for _, r in second.started} <= {second.source}
    if not mqtt_broker.is_mosquitto:  # addressed to the least busy: both take 2
        assert (len(first.started), len(second.started)) == (2, 2)


async def test_a_rerun_dry_run_and_a_rerun(
    mqtt_broker: BrokerEndpoint, serve: Serve, workflow: ServedWorkflow
) -> None:
    plan = [
        PlanStep(task_id="extract-1", task_name="extract", action="reuse", from_run=OLD),
        PlanStep(task_id="transform-1", task_name="transform", action="run", why="it failed"),
    ]
    engine = await serve(plan=plan, kept={OLD: KeptRun(workflow.name, {"day": "mon"})})
    planned = await asyncio.to_thread(
        cascade, mqtt_broker, "rerun", OLD[:12], "--workflow", workflow.name, "--dry-run"
    )
    assert planned.exit_code == 0, planned.output
    assert "transform" in planned.stdout
    assert planned.stdout.splitlines()[-1] == "1 to run, 1 to reuse; nothing was started"
    rerun = await asyncio.to_thread(
        cascade, mqtt_broker, "rerun", OLD[:12], "--workflow", workflow.name, "--from",
        "transform", "--json",
    )  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    reply = json.loads(rerun.stdout)
    assert (reply["outcome"], reply["rerun_of"]) == ("started", OLD)
    ((_, request),) = engine.started
    assert (request.rerun, request.from_task) == ("from", "transform")


async def test_nobody_serves_a_workflow_once_its_server_stopped(
    mqtt_broker: BrokerEndpoint, serve: Serve, workflow: ServedWorkflow
) -> None:
    engine = await serve()
    await engine.stop()
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as connector:
        with pytest.raises(NobodyServesError, match=f"nobody serves {workflow.name}"):
            await Controller(connector, timeout=3.0).start(workflow.name, {"day": "mon"})


async def test_a_runs_end_claimed_on_another_orgs_topic_is_refused(
    mqtt_broker: BrokerEndpoint, serve: Serve, workflow: ServedWorkflow, scope_name: str
) -> None:
    """A login of globex publishes, on its own org's topic (all an ACL lets it write), that
    a run of ``local``'s failed: the wait for the run, listening to every org's ends, refuses
    and counts it, and returns the end its engine sends."""
    engine = await serve(end=None)
    forger_source = f"{scope_name}-globex"
    heard_forged = asyncio.Event()

    class Ends(RunEnds):
        def __call__(self, message: Message) -> None:
            super().__call__(message)
            if message.topic.endswith(f"/{forger_source}"):
                heard_forged.set()

    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as connector:
        ends = Ends(connector.topic_prefix)
        await ends.listen(connector)  # every org's
        reply = await Controller(connector, issued_by="it", timeout=10.0).start(
            workflow.name, {"day": "mon"}
        )
        run_id = reply.run_id or ""
        waiting = asyncio.ensure_future(wait_run(connector, run_id, ends=ends, timeout=30))
        async with MqttConnector(
            mqtt_broker.host, mqtt_broker.port, source_id=forger_source, presence=False
        ) as forger:
            stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Failed")
            forged = Envelope(run_id=run_id, org_id=engine.org_id, project_id=engine.project_id,
                              source=forger_source, seq=2, body=stopped)  # fmt: skip
            topic = events_topic("globex", "etl", run_id, source=forger_source)
            await forger.publish(topic, forged, qos=1)
            await asyncio.wait_for(heard_forged.wait(), 10)
        assert not waiting.done()
        assert ends.refusals.of(forger_source) == 1
        assert ends.refusals.describe(forger_source) == "1 not its topic's org or project"
        await engine.finish(run_id, "Succeeded")
        assert await waiting == "Succeeded"


async def test_served_json_says_how_many_live_runs_an_announcement_leaves_out(
    mqtt_broker: BrokerEndpoint, serve: Serve, workflow: ServedWorkflow, scope_name: str
) -> None:
    """A server of 300 runs announces 256 of them (its announcement's bound): `cascade served
    --json` says each server's ``live_total`` and ``live_shown``, and on stderr which lists
    are cut; a server whose list is whole says so too, and nothing on stderr of it."""
    engine = await serve(end=None)
    busy = f"{scope_name}-busy"
    listed = [{"run_id": f"{n:032x}", "workflow": workflow.name} for n in range(256)]
    said = msgspec.convert({"source": busy, "org_id": "local", "project_id": "default",
                            "capacity": 300, "running": 300, "workflows": [workflow],
                            "live": listed}, ServedAnnouncement)  # fmt: skip
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=busy) as server:
        topic = served_topic("local", "default", busy, server.topic_prefix)

        async def called(message: Message) -> None:  # a broker with no retained to wildcards
            await server.publish(topic, said, qos=1, retain=True)

        rollcalls = await server.answer_rollcalls(called)
        await server.publish(topic, said, qos=1, retain=True)
        try:
            result = await asyncio.to_thread(cascade, mqtt_broker, "served", "--json")
        finally:
            await rollcalls.unsubscribe()
            await server.publish(topic, b"", qos=1, retain=True)
    assert result.exit_code == 0, result.output
    by_source = {s["source"]: s for s in json.loads(result.stdout)["served"]}
    assert (by_source[busy]["live_total"], by_source[busy]["live_shown"]) == (300, 256)
    mine = by_source[engine.source]
    assert (mine["live_total"], mine["live_shown"]) == (0, 0)
    assert f"{busy} 256 of 300" in result.stderr, result.stderr
    assert engine.source not in result.stderr
