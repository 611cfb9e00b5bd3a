"""The ACL `cascade acl` generates from a roles file, loaded into a real mosquitto and a real
RabbitMQ: the broker itself refuses a viewer's pause and another tenant's telemetry, lets an
operator over task:etl_* pause that scope only, and an engine still runs and is watched; an
engine login serves workflows (announces, takes shared and addressed requests), an operator
over an org starts one, a viewer lists them but cannot start one; an engine login that ids
encode (worker1.example.com) publishes as itself on its encoded level, and as no other; and,
with two orgs (acme, globex), commands are bound to their tenant: a globex engine login takes
no start of acme's (serving as org acme), a globex operator starts, decides and cancels nothing
in acme, an acme operator cancels nothing in globex, each refused at the broker, while acme's
own operator's start and decision reach acme's engine; an engine login serves a schedule (its
slots' claims and the statuses pass), which only its schedule's operator pauses and resumes, and
an operator over its org (not a viewer) backfills."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cascade.control import Start
from cascade.control.run_ids import listed_runs
from cascade.history import History, Recorder
from cascade.interfaces import Message, events_topic
from cascade.interfaces.notes import IssuedNote, decode_issued_note, issued_filter, issued_topic
from cascade.interfaces.serving import ServedWorkflow, WorkflowParam, addressed_start_topic
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    placed_summary_filter,
    summary_topic,
)
from cascade.notify import Destinations, Notifier, Webhook
from cascade.reader import ReaderModel, subscribe_summaries
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    RunStarted,
    Schedule,
    TaskBlocked,
    TaskFailedError,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import (
    MOSQUITTO_ONLY,
    NO_NATS,
    Inbox,
    NatsNode,
    ServingEngine,
    WebhookReceiver,
    nats_server_path,
    only_on_family,
    skip_on_family,
)

from .acl_logins import Logins, acl_mosquitto, acl_rabbitmq, generated_acl, passwords
from .acl_logins import refused as _refused

ROLES = """
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
broker_users = ["vera"]

[[grant]]
role = "operator"
scopes = ["task:etl_*"]
broker_users = ["olga"]

[[grant]]
role = "operator"
scopes = ["org:acme"]
broker_users = ["otto"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl"]
broker_users = ["pia"]

[[grant]]
role = "operator"
scopes = ["org:globex"]
broker_users = ["gina"]

[[grant]]
role = "operator"
scopes = ["schedule:tick", "trigger:after_tick"]
broker_users = ["sam"]

[broker]
recorders = ["rec"]
notifiers = ["notifier"]

[broker.engines]
"org:acme" = ["engine-1"]
"org:globex" = ["engine-g"]
global = ["worker1.example.com"]
"""
DOTTED = "worker1.example.com"
USERS = ("vera", "olga", "otto", "pia", "gina", "sam", "engine-1", "engine-g", "rec", "notifier",
         DOTTED)  # fmt: skip


def _started(org: str, project: str, run_id: str, source: str = "engine-1") -> dict[str, Any]:
    return {
        "v": "1.0",
        "ts": datetime.now(timezone.utc).isoformat(),
        "run_id": run_id,
        "org_id": org,
        "project_id": project,
        "source": source,
        "seq": 1,
        "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1},
    }


async def _a_notifier_posts_a_failed_run_and_steers_nothing(logins: Logins) -> None:
    """The notifier login of `[broker] notifiers` hears engine-1's acme run fail (its
    telemetry) and posts it; its pause of global is refused by the broker."""

    @task(name="etl_check")
    async def etl_check() -> int:
        raise ValueError("checksum mismatch")

    with WebhookReceiver() as receiver:
        reader = logins.connector("notifier")
        hook = Webhook(receiver.url, destinations=Destinations(allow=["127.0.0.1"]))
        notifier = Notifier(reader, hook, events=["run.failed"])
        await notifier.start()
        await reader.connect(require=True)
        try:
            engine = Engine(logins.connector("engine-1", presence=True, sourced_topics=True),
                            org_id="acme", project_id="etl", heartbeat_interval=None)  # fmt: skip
            with pytest.raises(TaskFailedError):
                await engine.run(etl_check())
            assert await asyncio.to_thread(receiver.wait_for, 1, 0, 30)
        finally:
            await notifier.stop()
            await reader.disconnect()
        ((_, posted),) = receiver.posts
    assert (posted["event"], posted["org_id"], posted["project_id"]) == (
        "run.failed", "acme", "etl"
    )  # fmt: skip
    _refused(await asyncio.to_thread(logins.cascade, "notifier", "pause", "global"))


async def _a_viewer_reads_its_project_only(logins: Logins) -> None:
    """worker1.example.com (an engine of every org) publishes a globex/web run, then an
    acme/etl one: vera gets the second only.
    mosquitto checks each message (vera subscribes to every org's); RabbitMQ checks the
    subscription, and closes the connection of one to globex's."""
    theirs, ours = uuid.uuid4().hex, uuid.uuid4().hex
    seen, snooped = Inbox(), Inbox()
    vera, snoop = logins.connector("vera"), logins.connector("vera")
    await vera.connect(require=True)
    await snoop.connect(require=True)
    try:
        wide = "cascade/telemetry/#" if logins.broker.is_mosquitto else None
        await vera.subscribe(wide or "cascade/telemetry/acme/etl/#", seen)
        await snoop.subscribe("cascade/telemetry/globex/web/#", snooped)
        async with logins.connector(DOTTED) as engine:
            for org, project, run_id in (("globex", "web", theirs), ("acme", "etl", ours)):
                topic = events_topic(org, project, run_id, source=DOTTED)
                await engine.publish(topic, _started(org, project, run_id, DOTTED), qos=1)
            await engine.flush(10)
            assert engine.stats.refused == engine.stats.dropped == 0
        got = await seen.until(lambda m: ours in m.topic)
    finally:
        await snoop.disconnect()
        await vera.disconnect()
    assert got.topic == events_topic("acme", "etl", ours, source=DOTTED)
    assert [m.topic for m in seen.all] == [got.topic]  # globex's, sent first, never came
    assert snooped.all == []


async def _an_operator_steers_its_scope_only(logins: Logins, db: Path) -> None:
    """vera's pause is refused; olga's pause of task:etl_* holds engine-1's etl_load (and its
    resume lets it run: watched by vera), her pauses of global and task:* are refused. Her
    --witness note reaches the recorder (its login may read them), and the audit says the
    broker vouches for her."""
    for user, scope in (("vera", "task:etl_*"), ("olga", "global"), ("olga", "task:*")):
        _refused(await asyncio.to_thread(logins.cascade, user, "pause", scope))
    history = History(f"sqlite:///{db}", mode="write")
    notes = Inbox()
    async with logins.connector("rec") as rec:
        await rec.subscribe(issued_filter(), notes)
        keeper = Recorder(rec, history, logins_bound=True)
        await keeper.start()
        paused = await asyncio.to_thread(logins.cascade, "olga", "pause", "task:etl_*", "--witness")
        assert paused.exit_code == 0, paused.output
        said = await notes.until(lambda m: m.topic == issued_topic("olga"))
        await keeper.flush(timeout=10)
        await keeper.stop()
    note = decode_issued_note(said.payload)
    assert (note.action, note.topic, note.issued_by) == (
        "set",
        "cascade/constraints/task/etl_%2A/pause",
        "olga",
    )
    (set_,) = [event for event in history.audit() if event.scope == "task:etl_*"]
    assert (set_.action, set_.issued_by, set_.vouched) == ("set", "olga", "broker")
    history.close()

    @task(name="etl_load")
    async def etl_load() -> int:
        return 1

    engine = Engine(logins.connector("engine-1", presence=True, sourced_topics=True),
                    org_id="acme", project_id="etl", heartbeat_interval=None)  # fmt: skip
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    seen = Inbox()
    async with logins.connector("vera") as vera:
        await vera.subscribe("cascade/telemetry/acme/etl/#", seen)
        run = asyncio.create_task(engine.run(etl_load()))
        try:
            await recorder.until(lambda: "etl_load" in recorder.names(TaskBlocked))
            resumed = await asyncio.to_thread(logins.cascade, "olga", "resume", "task:etl_*")
            assert resumed.exit_code == 0, resumed.output
            assert await asyncio.wait_for(run, 30) == 1
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        stopped = await seen.until(lambda m: m.payload["body"].get("event") == "ENGINE_STOPPED")
    assert stopped.topic.endswith("/engine-1")


async def _nobody_witnesses_for_another_login(logins: Logins) -> None:
    """vera's note on olga's topic is refused: only olga speaks for olga."""
    note = IssuedNote(topic="cascade/constraints/global/pause", action="set", issued_by="olga")
    async with logins.connector("vera") as vera:
        await vera.publish(issued_topic("olga"), note, qos=1)
        await vera.flush(10)
        assert vera.stats.refused + vera.stats.dropped == 1


async def _an_engine_serves_an_operator_starts_a_viewer_reads(logins: Logins) -> None:
    """engine-1 announces nightly (and, on mosquitto, probes and takes requests through the
    shared subscription); vera lists it but her start is refused by the broker; otto, an
    operator over acme, starts it through the shared topic (or addressed) and addressed, and
    waits for the run's end; so does pia, an operator over acme/etl, who may read that
    project's runs only."""
    nightly = ServedWorkflow(name="nightly", params=[WorkflowParam(name="day")])
    shared = logins.broker.is_mosquitto
    async with logins.connector("engine-1", presence=True) as own:
        # what Engine.serve probes: its own probe topic, through a group of its own; RabbitMQ
        # takes the filter literally (nothing comes back) and must not close the connection
        probe = Inbox()
        probe_topic = "cascade/served/acme/etl/engine-1/probe"
        group = f"$share/probe-{uuid.uuid4().hex[:8]}/{probe_topic}"
        await own.subscribe(group, probe)
        await own.publish(probe_topic, b"{}", qos=1)
        if shared:
            await probe.next()
        engine = ServingEngine(own, [nightly], org_id="acme", project_id="etl", shared=shared)
        await engine.start()
        await own.flush(10)
        assert own.stats.refused == own.stats.dropped == own.stats.reconnects == 0
        listed = await asyncio.to_thread(logins.cascade, "vera", "served", "--json")
        assert listed.exit_code == 0, listed.output
        (server,) = json.loads(listed.stdout)["served"]
        assert (server["source"], server["online"], server["shared"]) == ("engine-1", True, shared)
        refused = await asyncio.to_thread(
            logins.cascade, "vera", "start", "nightly", "-p", "day=mon", "--timeout", "3"
        )
        assert refused.exit_code == 1, refused.output
        if logins.broker.is_mosquitto:
            _refused(refused)
        assert engine.requests == []
        for user, on in (("otto", []), ("otto", ["--on", "engine-1"]), ("pia", [])):
            started = await asyncio.to_thread(
                logins.cascade, user, "start", "nightly", "-p", "day=mon", "--wait", *on
            )
            assert started.exit_code == 0, started.output
            run_id = engine.started[-1][0]
            assert started.stdout == (
                f"started nightly as run {run_id[:12]} on engine-1\nrun {run_id[:12]} Succeeded\n"
            )
        assert len(engine.started) == 3
        await engine.stop()


async def _a_login_that_ids_encode_publishes_as_itself(logins: Logins) -> None:
    """worker1.example.com's status and telemetry, on its encoded level, are taken (the
    recorder's `cascade status` shows it by its id); its telemetry as engine-1 is refused."""
    run_id = uuid.uuid4().hex
    async with logins.connector(DOTTED, presence=True) as own:
        topic = events_topic("acme", "etl", run_id, source=DOTTED)
        assert topic.endswith("/worker1%2Eexample%2Ecom")
        await own.publish(topic, _started("acme", "etl", run_id, DOTTED), qos=1)
        await own.flush(10)
        assert own.stats.refused == own.stats.dropped == own.stats.reconnects == 0
        listed = await asyncio.to_thread(logins.cascade, "rec", "status", "--json")
        assert listed.exit_code == 0, listed.output
        engines = {e["source"]: e for e in json.loads(listed.stdout)["engines"]}
        assert engines[DOTTED]["status"] == "online"
    async with logins.connector(DOTTED) as own:
        other = events_topic("acme", "etl", run_id, source="engine-1")
        await own.publish(other, _started("acme", "etl", run_id, "engine-1"), qos=1)
        await own.flush(10)
        assert own.stats.refused + own.stats.dropped == 1


async def _a_globex_engine_takes_no_start_of_acme(logins: Logins) -> None:
    """engine-g, an engine login of globex, serves nightly claiming org acme (what
    ``Engine(org_id="acme").serve`` does): its announcement and its subscriptions to acme's
    start topics are refused at the broker, so otto's six starts all go to acme's engine-1 and
    a start otto addresses to engine-g in acme never reaches it."""
    nightly = ServedWorkflow(name="nightly", params=[WorkflowParam(name="day")])
    shared = logins.broker.is_mosquitto
    rogue_link = logins.connector("engine-g", presence=True)
    async with logins.connector("engine-1", presence=True) as own:
        await rogue_link.connect()
        try:
            honest = ServingEngine(own, [nightly], org_id="acme", project_id="etl", shared=shared)
            # not shared, as Engine.serve finds: its probe is under acme's served topics,
            # which the broker denies it (a client that joins the shared group by hand gets
            # nothing either, but mosquitto drops what it would have been given: docs/teams.md)
            rogue = ServingEngine(rogue_link, [nightly], org_id="acme", project_id="etl")
            await honest.start()
            await rogue.start()
            await own.flush(10)
            for _ in range(6):
                started = await asyncio.to_thread(
                    logins.cascade, "otto", "start", "nightly", "-p", "day=mon"
                )
                assert started.exit_code == 0, started.output
                assert started.stdout.endswith(" on engine-1\n"), started.stdout
            assert (len(honest.started), rogue.requests) == (6, [])
            if logins.broker.is_mosquitto:
                # otto may write acme's start topics, engine-g may not read them: what otto
                # sends after it (a snapshot request, which engine-g may read) comes, it never
                barrier = Inbox()
                await rogue_link.subscribe("cascade/command/+/snapshot", barrier)
                async with logins.connector("otto") as otto:
                    request = Start(workflow="nightly", params={"day": "tue"}).wire_request()
                    topic = addressed_start_topic("acme", "etl", "nightly", "engine-g")
                    await otto.publish(topic, request, qos=1)
                    await otto.publish("cascade/command/0123/snapshot", {"run_id": "0123"}, qos=1)
                    await otto.flush(10)
                    assert otto.stats.refused == otto.stats.dropped == 0
                await barrier.next()
                assert rogue_link.stats.refused >= 1  # its announcement as acme's
            else:  # RabbitMQ refuses the subscription itself (and closes the connection)
                await eventually(lambda: rogue_link.stats.subscriptions_given_up >= 1)
            assert rogue.requests == []
            await honest.stop()
        finally:
            await rogue_link.disconnect()


async def _a_login_claims_runs_in_its_own_orgs_only(logins: Logins) -> None:
    """engine-g (globex's engine) publishes a failing run of acme/etl as itself, and vera (a
    viewer over acme/etl) one of globex/web: the broker refuses both; engine-g's globex run and
    vera's acme/etl one pass (the recorder, reading every org's, gets them)."""
    got = Inbox()
    async with logins.connector("rec") as rec:
        await rec.subscribe("cascade/telemetry/#", got)
        for login, (org, project), allowed in (
            ("engine-g", ("acme", "etl"), False),
            ("vera", ("globex", "web"), False),
            ("engine-g", ("globex", "web"), True),
            ("vera", ("acme", "etl"), True),
        ):
            run_id = uuid.uuid4().hex
            async with logins.connector(login) as link:
                topic = events_topic(org, project, run_id, source=login)
                await link.publish(topic, _started(org, project, run_id, login), qos=1)
                await link.flush(10)
                assert link.stats.refused + link.stats.dropped == (0 if allowed else 1), topic
            if allowed:
                await got.until(lambda m: run_id in m.topic)  # noqa: B023 (awaited here)
    assert {m.topic.split("/")[2] for m in got.all} == {"globex", "acme"}
    assert len(got.all) == 2  # the refused two never came


def _summary(source: str, *runs: tuple[str, str, str]) -> EngineSummary:
    """``source``'s summary with a live run of each ``(org, project, run_id)``."""
    listed = [
        SummaryRun(run_id=run_id, org_id=org, project_id=project, status="Running",
                   started=datetime.now(timezone.utc).isoformat(), tasks=TaskTally(running=1))
        for org, project, run_id in runs
    ]  # fmt: skip
    return EngineSummary(source=source, runs=RunTally(running=len(listed)), listed=listed)


async def _a_summary_lists_runs_of_its_own_orgs_only(logins: Logins) -> None:
    """engine-g (globex's engine) lists a live run of acme/etl in its summary: on its own topic
    (which names no org: the broker takes it), on acme/etl's (the broker refuses it), and on
    globex/web's (the broker takes it; readers refuse it, counted). A reader of every org's
    summaries (the recorder's login: a view's model, `cascade rerun`'s run ids) lists engine-g's
    globex run and no acme run of engine-g's; engine-1's acme run, on acme/etl's topic, is
    listed, and vera (a viewer over acme/etl) reads it there, but not globex's."""
    theirs, forged, ours = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    acme, globex = ("acme", "etl"), ("globex", "web")
    model, got, viewed = ReaderModel(), Inbox(), Inbox()

    def read(message: Message) -> None:
        model.apply(message)
        got(message)

    async with logins.connector("rec") as rec, logins.connector("vera") as vera:
        await subscribe_summaries(rec, read)
        wide = placed_summary_filter() if logins.broker.is_mosquitto else None
        await vera.subscribe(wide or "cascade/summary/acme/etl/+", viewed)
        async with logins.connector("engine-g", presence=True) as engine_g:
            for topic, summary, allowed in (
                ("cascade/summary/acme/etl/engine-g", _summary("engine-g", (*acme, forged)), False),
                ("cascade/summary/globex/web/engine-g",
                 _summary("engine-g", (*acme, forged)), True),
                (summary_topic("engine-g"),
                 _summary("engine-g", (*globex, theirs), (*acme, forged)), True),
                ("cascade/summary/globex/web/engine-g",
                 _summary("engine-g", (*globex, theirs)), True),
            ):  # fmt: skip
                before = engine_g.stats.refused + engine_g.stats.dropped
                await engine_g.publish(topic, summary, qos=1, retain=True)
                await engine_g.flush(10)
                after = engine_g.stats.refused + engine_g.stats.dropped
                assert after - before == (0 if allowed else 1), topic
            async with logins.connector("engine-1", presence=True) as engine_1:
                ours_topic = "cascade/summary/acme/etl/engine-1"
                for topic in (ours_topic, summary_topic("engine-1")):
                    summary = _summary("engine-1", (*acme, ours))
                    await engine_1.publish(topic, summary, qos=1, retain=True)
                await engine_1.flush(10)
                await got.until(lambda m: m.topic == summary_topic("engine-1"))
                await viewed.until(lambda m: m.topic == ours_topic)
                listed = await listed_runs(rec)

    def shown(source: str) -> set[str]:
        summary = model.engines[source].summary
        assert summary is not None
        return {run.run_id for run in summary.listed}

    assert shown("engine-g") == {theirs}  # the acme run it claimed is listed nowhere
    assert shown("engine-1") == {ours}
    if logins.broker.is_mosquitto:  # RabbitMQ sends retained summaries to a roll call's answers
        assert {(source, run.run_id) for source, run in listed.runs} == {
            ("engine-g", theirs),
            ("engine-1", ours),
        }
    assert model.refusals.describe("engine-g") == "1 not its topic's org or project"
    assert {m.topic for m in viewed.all} == {ours_topic}


async def _an_operator_steers_its_own_org_only(logins: Logins) -> None:
    """acme's engine-1 holds a task of an acme/etl run: gina (an operator over globex) cannot
    skip it, cancel the run nor start acme's workflow, and otto (over acme) cannot cancel a
    globex run: each is refused at the broker; otto's own skip reaches engine-1 and is applied,
    the only decision it ever got."""
    load_name = f"load_{uuid.uuid4().hex[:6]}"
    attempts = 0

    @task(name=load_name, on_failure="hold")
    async def load() -> int:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("the API is down")

    engine = Engine(logins.connector("engine-1", presence=True, sourced_topics=True),
                    org_id="acme", project_id="etl", heartbeat_interval=1.0)  # fmt: skip
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(load()))
    try:
        await recorder.until(lambda: load_name in recorder.names(TaskBlocked))
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        acme = ("--org", "acme", "--project", "etl", "--timeout", "3")
        for user, *args in (
            ("gina", "skip", run_id, load_name, *acme),
            ("gina", "cancel", run_id, *acme),
            ("otto", "cancel", uuid.uuid4().hex, "--org", "globex", "--project", "web"),
        ):
            said = await asyncio.to_thread(logins.cascade, user, *args)
            assert said.exit_code == 1, said.output
            if logins.broker.is_mosquitto:
                _refused(said)
        assert not run.done()  # gina's cancel never reached it
        skipped = await asyncio.to_thread(
            logins.cascade, "otto", "skip", run_id, load_name, *acme[:4], "--json"
        )
        assert skipped.exit_code == 0, skipped.output
        assert json.loads(skipped.stdout)["outcome"] == "applied"
        with pytest.raises(DependencyMissingError):  # skipped: the run succeeds, no result
            await asyncio.wait_for(run, 30)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert engine.stats.decisions == 1  # otto's only
    nightly = ServedWorkflow(name="nightly", params=[WorkflowParam(name="day")])
    async with logins.connector("engine-1", presence=True) as own:
        served = ServingEngine(own, [nightly], org_id="acme", project_id="etl")
        await served.start()
        await own.flush(10)
        started_by_gina = await asyncio.to_thread(
            logins.cascade, "gina", "start", "nightly", "-p", "day=mon", "--org", "acme",
            "--timeout", "3",
        )  # fmt: skip
        assert started_by_gina.exit_code == 1, started_by_gina.output
        if logins.broker.is_mosquitto:
            _refused(started_by_gina)
        assert served.requests == []
        await served.stop()


async def _a_schedule_is_steered_by_its_operators_only(logins: Logins) -> None:
    """engine-1 serves `tick` every second in acme/etl: its slots fire (the claims and the
    statuses it reads pass the ACL). vera's and olga's pauses of schedule:tick are refused, sam's
    (an operator over schedule:tick) pauses it until his resume, and pauses and resumes the
    trigger after_tick too (olga's pause of it and his of another trigger refused); vera's
    backfill of a past slot is refused, otto's (an operator over org:acme: a backfill is a
    start) starts it."""

    @task
    async def one() -> int:
        return 1

    def nightly():  # type: ignore[no-untyped-def]
        return one()

    engine = Engine(logins.connector("engine-1", presence=True, sourced_topics=True),
                    org_id="acme", project_id="etl", heartbeat_interval=None)  # fmt: skip
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    tick = Schedule(every=timedelta(seconds=1), workflow="nightly", catchup="none")

    def slots() -> list[str | None]:
        origins = [e.origin for e in recorder.events if isinstance(e, RunStarted)]
        return [o.scheduled_for for o in origins if o is not None and o.schedule == "tick"]

    def said() -> dict[str, Any]:
        listed = logins.cascade("vera", "schedules", "--json")
        assert listed.exit_code == 0, listed.output
        found: dict[str, dict[str, Any]] = {
            s["name"]: s for s in json.loads(listed.stdout)["schedules"]
        }
        return found["tick"]

    serving = asyncio.create_task(engine.serve({"nightly": nightly}, schedules={"tick": tick}))
    try:
        await recorder.until(lambda: len(slots()) >= 1, timeout=30)
        for user in ("vera", "olga"):
            _refused(await asyncio.to_thread(logins.cascade, user, "pause", "schedule:tick"))
        paused = await asyncio.to_thread(
            logins.cascade, "sam", "pause", "schedule:tick", "--reason", "db migration"
        )
        assert paused.exit_code == 0, paused.output
        await eventually(lambda: engine.stats.slots_paused >= 1, timeout=30)
        shown = await asyncio.to_thread(said)
        assert (shown["paused"], shown["paused_by"], shown["paused_reason"]) == (
            True, "sam", "db migration"
        )  # fmt: skip
        resumed = await asyncio.to_thread(logins.cascade, "sam", "resume", "schedule:tick")
        assert resumed.exit_code == 0, resumed.output
        _refused(await asyncio.to_thread(logins.cascade, "olga", "pause", "trigger:after_tick"))
        _refused(await asyncio.to_thread(logins.cascade, "sam", "pause", "trigger:other"))
        for verb in ("pause", "resume"):
            done = await asyncio.to_thread(logins.cascade, "sam", verb, "trigger:after_tick")
            assert done.exit_code == 0, done.output
        fired = len(slots())
        await recorder.until(lambda: len(slots()) > fired, timeout=30)
        past = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
        window = ("--from", past.isoformat(), "--to", past.isoformat(), "--timeout", "3")
        refused = await asyncio.to_thread(logins.cascade, "vera", "backfill", "tick", *window)
        assert refused.exit_code != 0, refused.output
        assert past.isoformat() not in slots()
        backfilled = await asyncio.to_thread(
            logins.cascade, "otto", "backfill", "tick", *window[:4], "--json"
        )
        assert backfilled.exit_code == 0, backfilled.output
        await recorder.until(lambda: past.isoformat() in slots(), timeout=30)
        assert engine.stats.slots_backfilled == 1
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_the_generated_mosquitto_acl_refuses_what_a_role_may_not_do(tmp_path: Path) -> None:
    """`cascade acl --mosquitto`, as generated, as a real mosquitto's acl_file."""
    with acl_mosquitto(generated_acl(ROLES, tmp_path, "mosquitto"), USERS) as broker:
        logins = Logins(broker)
        await _a_viewer_reads_its_project_only(logins)
        await _an_operator_steers_its_scope_only(logins, tmp_path / "history.sqlite")
        await _nobody_witnesses_for_another_login(logins)
        await _an_engine_serves_an_operator_starts_a_viewer_reads(logins)
        await _a_login_that_ids_encode_publishes_as_itself(logins)
        await _a_notifier_posts_a_failed_run_and_steers_nothing(logins)


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_the_generated_mosquitto_acl_binds_commands_to_their_tenant(tmp_path: Path) -> None:
    """Two orgs' engines and operators on a real mosquitto with `cascade acl`'s acl_file."""
    with acl_mosquitto(generated_acl(ROLES, tmp_path, "mosquitto"), USERS) as broker:
        logins = Logins(broker)
        await _a_globex_engine_takes_no_start_of_acme(logins)
        await _a_login_claims_runs_in_its_own_orgs_only(logins)
        await _a_summary_lists_runs_of_its_own_orgs_only(logins)
        await _an_operator_steers_its_own_org_only(logins)
        await _a_schedule_is_steered_by_its_operators_only(logins)


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
async def test_the_generated_rabbitmq_definitions_refuse_what_a_role_may_not_do(
    tmp_path: Path,
) -> None:
    """`cascade acl --rabbitmq`, as generated, loaded into a real RabbitMQ node beside its users
    (created separately, as the docs say)."""
    with acl_rabbitmq(generated_acl(ROLES, tmp_path, "rabbitmq"), USERS) as broker:
        logins = Logins(broker)
        await _a_viewer_reads_its_project_only(logins)
        await _an_operator_steers_its_scope_only(logins, tmp_path / "history.sqlite")
        await _nobody_witnesses_for_another_login(logins)
        await _an_engine_serves_an_operator_starts_a_viewer_reads(logins)
        await _a_login_that_ids_encode_publishes_as_itself(logins)
        await _a_notifier_posts_a_failed_run_and_steers_nothing(logins)


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
@pytest.mark.timeout(300)  # each denied subscription closes a connection: the CLI reconnects
async def test_the_generated_rabbitmq_definitions_bind_commands_to_their_tenant(
    tmp_path: Path,
) -> None:
    """Two orgs' engines and operators on a real RabbitMQ with `cascade acl`'s definitions."""
    with acl_rabbitmq(generated_acl(ROLES, tmp_path, "rabbitmq"), USERS) as broker:
        logins = Logins(broker)
        await _a_globex_engine_takes_no_start_of_acme(logins)
        await _a_login_claims_runs_in_its_own_orgs_only(logins)
        await _a_summary_lists_runs_of_its_own_orgs_only(logins)
        await _an_operator_steers_its_own_org_only(logins)
        await _a_schedule_is_steered_by_its_operators_only(logins)


@only_on_family("nats", "it starts a NATS node of its own")
async def test_an_engine_serves_under_the_generated_nats_authorization(tmp_path: Path) -> None:
    """`cascade acl --nats`, as generated, included in a real nats-server's config: an engine
    login serves, an operator over its org starts, a viewer lists but cannot start.

    The other scenarios here count what the broker refused its publisher: nats-server takes a
    denied MQTT 3.1.1 publish, acknowledges it and drops it (its log says "Publish
    Violation"), so the publisher cannot learn it there (docs/teams.md): a viewer's pause is
    said done and nothing is set."""
    if nats_server_path() is None:
        pytest.skip(NO_NATS)
    with NatsNode(
        authorization=generated_acl(ROLES, tmp_path, "nats"), users=passwords(USERS)
    ) as broker:
        logins = Logins(broker)
        await _an_engine_serves_an_operator_starts_a_viewer_reads(logins)
        # a viewer's pause: acknowledged and dropped, so said done (docs/teams.md), never set
        paused = await asyncio.to_thread(logins.cascade, "vera", "pause", "task:etl_*")
        assert paused.exit_code == 0, paused.output
        retained = Inbox()
        async with logins.connector("otto") as otto:
            await otto.subscribe("cascade/constraints/#", retained)  # returns after retained
        assert retained.all == []
        assert "Publish Violation" in broker.log_text()
