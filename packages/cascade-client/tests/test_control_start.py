"""cascade.control's served workflows: who serves what, a start or a rerun checked before it
is sent, sent to one process serving the workflow (a stand-in that answers as ``Engine.serve``
does), its answer taken only from a process that serves it, and the run's end awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import (
    ControlError,
    Controller,
    NobodyServesError,
    Refusal,
    RunEndError,
    RunEnds,
    Served,
    ServedInManyPlacesError,
    Start,
    StartTimeoutError,
    wait_run,
)
from cascade.interfaces import (
    Envelope,
    LifecycleEvent,
    decode_envelope,
    encode_payload,
    events_topic,
)
from cascade.interfaces.commands import reply_topic
from cascade.interfaces.serving import (
    PlanStep,
    RunOrigin,
    ServedWorkflow,
    StartReply,
    StartRequest,
    WorkflowParam,
    addressed_start_topic,
    served_topic,
    start_topic,
)
from cascade.testkit import Inbox, KeptRun, ServingEngine

MAX_PARAMS_BYTES = 16 * 1024  # the protocol's bound, as docs/protocol.md states it

NIGHTLY = ServedWorkflow(
    name="nightly",
    params=[
        WorkflowParam(name="day", annotation="str"),
        WorkflowParam(name="rows", required=False, default=5, annotation="int"),
    ],
    doc="The nightly load.",
)
OLD = "58a88765cea2c1d0a1f3c2b7e9d84a61"

Serve = Callable[..., Awaitable[ServingEngine]]


async def served(client: InMemoryConnector, *, timeout: float) -> list[Served]:
    """Who serves what, as a caller in Python asks it."""
    return await Controller(client, timeout=timeout).served()


async def start(
    client: InMemoryConnector,
    workflow: str,
    params: dict[str, Any] | None = None,
    *,
    timeout: float,
    issued_by: str | None = None,
    on_refused: Callable[[Refusal], None] | None = None,
    **fields: Any,
) -> StartReply:
    """A start (a rerun with ``rerun_of``) as a caller in Python sends it: a :class:`Start`."""
    control = Controller(client, issued_by=issued_by, timeout=timeout)
    return await control.send(
        Start(workflow=workflow, params=params, **fields), on_refused=on_refused
    )


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def serve(broker: InMemoryBroker) -> AsyncIterator[Serve]:
    """Start a stand-in serving process on ``broker`` (as ``source``, with presence)."""
    connectors: list[InMemoryConnector] = []

    async def make(source: str = "host-1", **options: object) -> ServingEngine:
        connector = InMemoryConnector(broker, source_id=source)
        await connector.connect(require=True)
        connectors.append(connector)
        engine = ServingEngine(connector, [NIGHTLY], **options)  # type: ignore[arg-type]
        await engine.start()
        return engine

    yield make
    for connector in connectors:
        await connector.disconnect()


@pytest.fixture
async def client(broker: InMemoryBroker) -> AsyncIterator[InMemoryConnector]:
    connector = InMemoryConnector(broker, presence=False)
    await connector.connect(require=True)
    yield connector
    await connector.disconnect()


async def test_served_lists_each_process_with_its_presence(
    serve: Serve, client: InMemoryConnector
) -> None:
    """Every announcement, by source, with whether the source is online: a process that
    went away without clearing its announcement (a crash: its will) is listed offline."""
    await serve("host-1")
    gone = await serve("host-2")
    await gone.connector.disconnect()  # its announcement stays; its status says offline
    listed = await served(client, timeout=1.0)
    assert [(s.source, s.online) for s in listed] == [("host-1", True), ("host-2", False)]
    first = listed[0]
    assert isinstance(first, Served)
    assert first.workflow("nightly") == NIGHTLY
    assert first.workflow("weekly") is None
    assert (first.load, first.announcement.capacity) == (0, 4)


async def test_a_stopped_process_is_no_longer_listed(
    serve: Serve, client: InMemoryConnector
) -> None:
    engine = await serve("host-1")
    await engine.stop()
    assert await served(client, timeout=1.0) == []


async def test_an_announcement_from_another_source_than_its_topic_is_refused(
    broker: InMemoryBroker, client: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """The topic's level is what a broker ACL binds to the login: a payload claiming
    another source is not listed (and a start is not sent to it)."""
    async with InMemoryConnector(broker, source_id="mallory", presence=False) as mallory:
        engine = ServingEngine(mallory, [NIGHTLY])
        forged = engine.announcement()
        forged.source = "host-1"
        await mallory.publish(served_topic("local", "default", "mallory"), forged, qos=1,
                              retain=True)  # fmt: skip
        assert await served(client, timeout=1.0) == []
        with pytest.raises(NobodyServesError, match="nobody serves nightly"):
            await start(client, "nightly", {"day": "mon"}, timeout=1.0)
    assert (
        "refused an announcement on 'cascade/served/local/default/mallory': its source is not"
        in caplog.text
    )


async def test_an_announcement_of_another_org_than_its_topic_is_refused(
    broker: InMemoryBroker, client: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """The org and project levels are what a broker ACL binds: a process of globex that
    claims acme in its payload is not listed, and no start of acme's goes to it."""
    async with InMemoryConnector(broker, source_id="mallory", presence=False) as mallory:
        forged = ServingEngine(mallory, [NIGHTLY], org_id="acme", project_id="etl").announcement()
        topic = served_topic("globex", "etl", "mallory")
        await mallory.publish(topic, forged, qos=1, retain=True)
        assert await served(client, timeout=1.0) == []
        with pytest.raises(NobodyServesError, match="nobody serves nightly"):
            await start(client, "nightly", {"day": "mon"}, timeout=1.0, org="acme")
    said = "refused an announcement on 'cascade/served/globex/etl/mallory': its org or project"
    assert said in caplog.text


async def test_a_start_goes_to_one_org_and_project(
    broker: InMemoryBroker, serve: Serve, client: InMemoryConnector
) -> None:
    """A start's topic names one org and project: with processes of two serving the workflow,
    one must be named (nothing is sent until then); named, it goes to that one's topic only."""
    acme = await serve("host-1", org_id="acme", project_id="etl", shared=True)
    globex = await serve("host-2", org_id="globex", project_id="etl", shared=True)
    sent = len(broker.history)
    with pytest.raises(ServedInManyPlacesError) as caught:
        await start(client, "nightly", {"day": "mon"}, timeout=1.0)
    assert str(caught.value) == (
        "nightly is served in 2 projects (acme/etl, globex/etl): a start goes to one; name its "
        "org and project (--org, --project)"
    )
    assert caught.value.places == (("acme", "etl"), ("globex", "etl"))
    assert not any("/start/" in m.topic for m in broker.history[sent:])
    reply = await start(client, "nightly", {"day": "mon"}, timeout=2.0, org="globex")
    assert (reply.source, len(globex.started), len(acme.started)) == ("host-2", 1, 0)
    assert [m.topic for m in broker.history[sent:] if "/start/" in m.topic] == [
        start_topic("globex", "etl", "nightly")
    ]
    with pytest.raises(NobodyServesError, match="host-1 serves nothing in org globex"):
        await start(client, "nightly", {"day": "mon"}, timeout=1.0, org="globex", on="host-1")


async def test_a_start_is_started_with_a_new_run_and_its_origin(
    serve: Serve, client: InMemoryConnector
) -> None:
    """Addressed to the one server (no shared subscriptions here), answered ``started`` with
    the run's id and name; the run's ENGINE_STARTED names it and says where it came from."""
    engine = await serve("host-1", org_id="acme")
    events = Inbox()
    await client.subscribe("cascade/telemetry/#", events)
    reply = await start(
        client, "nightly", {"day": "mon"}, issued_by="alice", reason="late data", timeout=2.0
    )
    assert isinstance(reply, StartReply)
    assert reply.started
    assert reply.outcome == "started"
    assert (reply.source, reply.workflow, reply.name) == ("host-1", "nightly", "nightly")
    ((run_id, request),) = engine.started
    assert reply.run_id == run_id
    assert (request.params, request.issued_by, request.reason) == (
        {"day": "mon"}, "alice", "late data"
    )  # fmt: skip
    first = decode_envelope((await events.next()).raw)
    assert first.run_id == run_id
    body = first.body
    assert isinstance(body, LifecycleEvent)
    assert body.event == "ENGINE_STARTED"
    assert body.name == "nightly"
    origin = body.origin
    assert isinstance(origin, RunOrigin)
    assert (origin.workflow, origin.params, origin.request_id) == (
        "nightly", {"day": "mon", "rows": 5}, request.id
    )  # fmt: skip


async def test_a_refusal_is_an_answer_with_the_servers_reason(
    serve: Serve, client: InMemoryConnector
) -> None:
    await serve("host-1")
    reply = await start(client, "nightly", {"day": "mon", "colour": "red"}, timeout=2.0)
    assert reply.outcome == "refused"
    assert reply.run_id is None
    assert reply.error == "nightly() got an unexpected keyword argument 'colour'"
    missing = await start(client, "nightly", timeout=2.0)
    assert "missing 1 required argument: 'day'" in missing.error


async def test_nobody_serving_the_workflow_sends_nothing(
    broker: InMemoryBroker, serve: Serve, client: InMemoryConnector
) -> None:
    await serve("host-1")
    sent = len(broker.history)
    with pytest.raises(NobodyServesError) as caught:
        await start(client, "weekly", timeout=1.0)
    assert str(caught.value) == "nobody serves weekly (cascade served lists who serves what)"
    assert caught.value.workflow == "weekly"
    assert not any("/start/" in m.topic for m in broker.history[sent:])


async def test_a_server_gone_offline_is_not_asked_and_the_error_says_so(
    serve: Serve, client: InMemoryConnector
) -> None:
    engine = await serve("host-1")
    await engine.connector.disconnect()
    with pytest.raises(NobodyServesError, match=r"host-1 served it, offline now"):
        await start(client, "nightly", {"day": "mon"}, timeout=1.0)


async def test_on_names_the_process_and_only_its_answer_counts(
    broker: InMemoryBroker, serve: Serve, client: InMemoryConnector
) -> None:
    await serve("host-1")
    two = await serve("host-2")
    sent = len(broker.history)
    reply = await start(client, "nightly", {"day": "mon"}, on="host-2", timeout=2.0)
    assert reply.source == "host-2"
    assert two.started
    assert [m.topic for m in broker.history[sent:] if "/start/" in m.topic] == [
        addressed_start_topic("local", "default", "nightly", "host-2")
    ]
    with pytest.raises(NobodyServesError, match="host-3 serves nothing"):
        await start(client, "nightly", {"day": "mon"}, on="host-3", timeout=1.0)
    with pytest.raises(
        NobodyServesError, match=r"host-2 does not serve weekly \(it serves nightly\)"
    ):
        await start(client, "weekly", on="host-2", timeout=1.0)


async def test_the_least_loaded_server_is_asked(serve: Serve, client: InMemoryConnector) -> None:
    """Without shared subscriptions the request is addressed to an online server of the
    least ``running + queued``: the busy one is passed over."""
    busy = await serve("host-1", end=None)
    await start(client, "nightly", {"day": "mon"}, on="host-1", timeout=2.0)
    assert busy.live
    idle = await serve("host-2")
    for _ in range(3):
        reply = await start(client, "nightly", {"day": "tue"}, timeout=2.0)
        assert reply.source == "host-2"
    assert (len(busy.started), len(idle.started)) == (1, 3)


async def test_a_shared_server_gets_the_request_on_the_workflows_topic(
    broker: InMemoryBroker, serve: Serve, client: InMemoryConnector
) -> None:
    """Where a server announces it takes requests through the shared subscription, the
    request goes to the workflow's topic, for the broker to give one of them."""
    await serve("host-1", shared=True)
    requests = Inbox()
    await client.subscribe(start_topic("local", "default", "nightly"), requests)
    reply = await start(client, "nightly", {"day": "mon"}, timeout=2.0)
    assert reply.source == "host-1"
    request = msgspec.json.decode((await requests.next()).raw, type=StartRequest)
    assert request.id == reply.id


async def test_no_answer_in_time_names_who_serves_it(
    serve: Serve, client: InMemoryConnector
) -> None:
    engine = await serve("host-1", answer=False)
    with pytest.raises(StartTimeoutError) as caught:
        await start(client, "nightly", {"day": "mon"}, timeout=0.5)
    assert str(caught.value) == (
        "no answer to start nightly within 0.5 s from host-1, which serves it"
    )
    assert caught.value.servers == ("host-1",)
    assert len(engine.requests) == 1


async def test_answers_from_processes_that_do_not_serve_it_are_refused(
    broker: InMemoryBroker, serve: Serve, client: InMemoryConnector
) -> None:
    """Anyone may publish on the reply topics: an answer counts only from a process that
    serves the workflow and on its own topic; the others are refused and told."""
    engine = await serve("host-1", answer=False)
    requests = Inbox()
    # every request addressed to host-1 (docs/protocol.md, "Served workflows")
    await client.subscribe("cascade/start/local/default/+/host-1", requests)
    refused: list[Refusal] = []
    task = asyncio.ensure_future(
        start(client, "nightly", {"day": "mon"}, timeout=5.0, on_refused=refused.append)
    )
    request = msgspec.json.decode((await requests.next()).raw, type=StartRequest)
    async with InMemoryConnector(broker, source_id="mallory", presence=False) as mallory:
        fake = StartReply(
            id=request.id, source="mallory", workflow="nightly", outcome="started", run_id=OLD
        )
        await mallory.publish(reply_topic("local", request.id, "mallory"), fake, qos=1)
        fake.source = "host-1"  # on mallory's topic: not host-1's answer
        await mallory.publish(reply_topic("local", request.id, "mallory"), fake, qos=1)
        await broker.idle()
        assert not task.done()
        real = StartReply(
            id=request.id, source="host-1", workflow="nightly", outcome="refused", error="busy"
        )
        await engine.connector.publish(reply_topic("local", request.id, "host-1"), real, qos=1)
        reply = await task
    assert (reply.source, reply.outcome, reply.error) == ("host-1", "refused", "busy")
    assert [r.source for r in refused] == ["mallory", "mallory"]
    assert str(refused[0]) == "refused an answer from mallory: it does not serve nightly"
    assert "not its topic's source" in refused[1].why


async def test_a_rerun_and_its_dry_run(serve: Serve, client: InMemoryConnector) -> None:
    """A rerun names the run by a prefix; the server answers with the full id, the params
    the run ran with (updated by the request's) and, for a dry run, the plan."""
    plan = [
        PlanStep(task_id="extract-1", task_name="extract", action="reuse", from_run=OLD),
        PlanStep(task_id="transform-1", task_name="transform", action="run", why="failed"),
    ]
    engine = await serve(
        "host-1", plan=plan, kept={OLD: KeptRun("nightly", {"day": "mon", "rows": 5})}
    )
    control = Controller(client, issued_by="alice", timeout=2.0)
    planned = await control.rerun(OLD[:12], workflow="nightly", dry_run=True)
    assert planned.outcome == "planned"
    assert planned.plan == plan
    assert planned.plan_count == 2
    assert planned.rerun_of == OLD
    assert not engine.started
    reply = await control.rerun(OLD[:12], workflow="nightly", params={"rows": 7})
    assert reply.started
    assert reply.rerun_of == OLD
    assert engine.kept[reply.run_id or ""].params == {"day": "mon", "rows": 7}
    ((_, request),) = engine.started
    assert (request.rerun_of, request.rerun, request.issued_by) == (OLD[:12], "failure", "alice")
    again = await control.run(OLD).rerun(workflow="nightly", dry_run=True)  # through its handle
    assert (again.outcome, again.rerun_of, again.plan) == ("planned", OLD, plan)
    unknown = await control.rerun("abcdef", workflow="nightly")
    assert unknown.outcome == "refused"
    assert "no run abcdef" in unknown.error


async def test_a_second_rerun_of_a_run_is_refused_while_the_first_is_live(
    serve: Serve, client: InMemoryConnector
) -> None:
    await serve("host-1", end=None, kept={OLD: KeptRun("nightly", {"day": "mon"})})
    first = await start(client, "nightly", rerun_of=OLD, timeout=2.0)
    second = await start(client, "nightly", rerun_of=OLD, timeout=2.0)
    assert first.started
    assert second.outcome == "refused"
    assert second.error == f"a rerun of {OLD} is live: {first.run_id}"


@pytest.mark.parametrize(
    ("given", "field", "said"),
    [
        ({"workflow": "night ly"}, "workflow", "a workflow's name is 1 to 64"),
        ({"params": {"day": object()}}, "params", "params are not JSON"),
        ({"params": {"x": "y" * MAX_PARAMS_BYTES}}, "params", "bytes of JSON, at most"),
        ({"rerun_of": "58a88"}, "rerun_of", "at least 6 hex digits"),
        ({"rerun_of": "nightly"}, "rerun_of", "a run id is hex digits"),
        ({"rerun_of": OLD, "rerun": "some"}, "rerun", "rerun must be one of"),
        ({"rerun_of": OLD, "rerun": "from"}, "from_task", "from_task goes with rerun 'from'"),
        ({"dry_run": True}, "dry_run", "dry_run goes with rerun_of"),
        ({"reason": " "}, "reason", "reason is empty"),
    ],
)
def test_bad_input_is_refused_naming_its_field(
    given: dict[str, object], field: str, said: str
) -> None:
    arguments: dict[str, Any] = {"workflow": "nightly", **given}
    with pytest.raises(ControlError, match=said) as caught:
        Start(**arguments)
    assert caught.value.field == field


def test_a_request_says_who_why_and_when() -> None:
    asked = Start(workflow="nightly", params={"day": "mon"}, rerun_of=OLD.upper(), rerun="from",
                  from_task="load", reason="fixed")  # fmt: skip
    request = asked.wire_request(issued_by="alice")
    assert request.rerun_of == OLD
    assert (request.rerun, request.from_task) == ("from", "load")
    assert request.issued_at is not None
    assert len(request.id) == 32


async def test_wait_run_hears_the_end_of_a_short_run_listened_to_from_before(
    serve: Serve, client: InMemoryConnector
) -> None:
    """A run may end before its requester hears the answer: listened to from before the
    request, its end is not missed."""
    await serve("host-1", end="Failed")
    ends = RunEnds(client.topic_prefix)
    handle = await ends.listen(client)
    reply = await start(client, "nightly", {"day": "mon"}, timeout=2.0)
    assert reply.run_id is not None
    status = await wait_run(client, reply.run_id, owner=reply.source, ends=ends, timeout=2.0)
    assert status == "Failed"
    await handle.unsubscribe()


async def test_wait_run_waits_for_a_live_run_and_its_owners_end_only(
    broker: InMemoryBroker, serve: Serve, client: InMemoryConnector
) -> None:
    """Another source's end of the run (on its own topic) is not the run's end."""
    engine = await serve("host-1", end=None)
    reply = await start(client, "nightly", {"day": "mon"}, timeout=2.0)
    run_id = reply.run_id or ""
    ends = RunEnds(client.topic_prefix)
    await ends.listen(client)
    waiting = asyncio.ensure_future(wait_run(client, run_id, owner="host-1", ends=ends))
    async with InMemoryConnector(broker, source_id="mallory", presence=False) as mallory:
        forged = Envelope(
            run_id=run_id,
            org_id="local",
            project_id="default",
            source="mallory",
            seq=2,
            body=LifecycleEvent(event="ENGINE_STOPPED", status="Failed"),
        )
        topic = events_topic("local", "default", run_id, source="mallory")
        await mallory.publish(topic, encode_payload(forged), qos=1)
        await broker.idle()
    assert ends.status(run_id) == "Failed"
    assert ends.status(run_id, "host-1") is None
    assert not waiting.done()
    await engine.finish(run_id, "Succeeded")
    assert await waiting == "Succeeded"


async def test_wait_run_ends_when_the_owner_goes_offline_or_in_time(
    serve: Serve, client: InMemoryConnector
) -> None:
    engine = await serve("host-1", end=None)
    reply = await start(client, "nightly", {"day": "mon"}, timeout=2.0)
    run_id = reply.run_id or ""
    with pytest.raises(RunEndError, match=r"did not end within 0\.2 s"):
        await wait_run(client, run_id, owner="host-1", timeout=0.2)
    waiting = asyncio.ensure_future(wait_run(client, run_id, owner="host-1"))
    await engine.connector.disconnect()
    with pytest.raises(RunEndError, match="host-1 went offline before run"):
        await waiting


async def test_a_rollcall_broker_is_asked_and_its_answers_awaited(
    client: InMemoryConnector,
) -> None:
    """Where retained messages reach exact subscriptions only (RabbitMQ 3.x), the serving
    processes are asked to announce again (the roll call), and a start waits for them."""
    rabbit = InMemoryBroker(retained_to_wildcards=False)
    async with InMemoryConnector(rabbit, source_id="host-1") as connector:
        engine = ServingEngine(connector, [NIGHTLY])
        await engine.start()
        async with InMemoryConnector(rabbit, presence=False) as asker:
            listed = await served(asker, timeout=2.0)
            assert [s.source for s in listed] == ["host-1"]
            reply = await start(asker, "nightly", {"day": "mon"}, timeout=2.0)
            assert reply.started


async def test_the_controller_lists_and_starts(serve: Serve, client: InMemoryConnector) -> None:
    engine = await serve("host-1")
    control = Controller(client, issued_by="alice", timeout=2.0)
    assert [s.source for s in await control.served()] == ["host-1"]
    reply = await control.start("nightly", {"day": "mon"}, reason="late")
    assert reply.started
    ((_, request),) = engine.started
    assert (request.issued_by, request.reason) == ("alice", "late")
    with pytest.raises(ControlError, match="params are not JSON"):
        await control.start("nightly", {"day": object()})
