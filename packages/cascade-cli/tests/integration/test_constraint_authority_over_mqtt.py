"""Issue 45's broker-side attacks, against the ACL `cascade acl` generates, on a real mosquitto
and a real RabbitMQ: an operator over ``org:acme`` and ``task:etl_*`` (olga: acme's ``etl_*``,
``org:acme/task:etl_*``) tries to steer the whole fleet through the topics her ACL grants, to
lift the admin's pause, to write another
scope through the RabbitMQ constraints index, and to read another org's cancel answers. Each
is refused, by the broker or by the engine (named in each step); her honest pause holds her
scope, and her cancel of her org's run is answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cascade.interfaces import constraint_topic
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import MOSQUITTO_ONLY, Inbox, only_on_family, skip_on_family

from . import acl_logins
from .acl_logins import acl_mosquitto, acl_rabbitmq, generated_acl

ROLES = """
[[grant]]
role = "operator"
scopes = ["org:acme", "task:etl_*"]
broker_users = ["olga"]

[[grant]]
role = "admin"
scopes = ["global"]
broker_users = ["root"]

[broker]
engines = ["engine-1"]
"""
USERS = ("olga", "root", "engine-1")
ETL = "org:acme/task:etl_*"  # her grant's task scope, within her grant's org
ETL_PAUSE = constraint_topic(ETL, "pause")
ETL_LIMIT = constraint_topic(ETL, "concurrency")


def _forged(scope: str, kind: str = "pause", **params: Any) -> bytes:
    return json.dumps({"id": "pause-global", "scope": scope, "type": kind, "params": params,
                       "expires_at": None}).encode()  # fmt: skip


class Logins(acl_logins.Logins):
    async def retain(self, user: str, topic: str, raw: bytes, *, index: bool = False) -> None:
        """``raw`` retained on ``topic`` as ``user`` (taken by the broker: her ACL grants it),
        and with ``index``, listed in the constraints index with that payload as its copy."""
        async with self.connector(user) as client:
            await client.publish(topic, raw, qos=1, retain=True)
            await client.flush(10)
            assert client.stats.refused == client.stats.dropped == 0
            if index and raw:
                await client.index_constraints(put={topic: json.loads(raw)}, timeout=10)
            elif index:
                await client.index_constraints(remove=[topic], timeout=10)


@task(name="web_report")
async def web_report() -> str:
    return "report"


@task(name="etl_load")
async def etl_load() -> str:
    return "loaded"


def _running(name: str, recorder: EventRecorder) -> Callable[[], bool]:
    return lambda: name in recorder.names(TaskRunning)


async def _run_until(
    engine: Engine, recorder: EventRecorder, target: Any, held: Callable[[], bool]
) -> asyncio.Task[Any]:
    run = asyncio.create_task(engine.run(target))
    waiting = asyncio.create_task(recorder.until(held))
    done, _ = await asyncio.wait({run, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert waiting in done, "the run ended (or hung) before what was awaited"
    return run


async def _fleet_steering_through_her_topics_is_refused(logins: Logins) -> None:
    """olga retains a global pause and a task:* limit of 1 on her own topics (the broker takes
    them: her ACL grants those topics) and lists them in the index: the engine (of her own
    org) refuses both (``rejected_topic``), and her org's run goes on. She also lists the
    task:* limit
    topic itself in the index, with her limit as its copy (the index's shards are every
    operator's to write): the engine reads that topic, which holds nothing, and applies
    nothing (on RabbitMQ; mosquitto keeps no index)."""
    await logins.retain("olga", ETL_PAUSE, _forged("global"), index=True)
    await logins.retain("olga", ETL_LIMIT, _forged("task:*", "concurrency", limit=1), index=True)
    wide = constraint_topic("task:*", "concurrency")
    async with logins.connector("olga") as olga:
        copy = json.loads(_forged("task:*", "concurrency", limit=1))
        await olga.index_constraints(put={wide: copy}, timeout=10)
    engine, recorder = logins.engine("acme", "p", presence=True)
    # etl_load makes her scope's topics ones the engine reads on RabbitMQ (there it reads the
    # indexed topics of scopes that govern its run's tasks only)
    run = engine.run([web_report(), web_report(), etl_load()])
    assert await asyncio.wait_for(run, 30) == ["report", "report", "loaded"]
    assert engine.constraints == []
    assert engine.stats.rejected_topic == 2
    assert engine.stats.accepted == 0
    assert "web_report" not in recorder.names(TaskBlocked)
    await logins.retain("olga", ETL_PAUSE, b"", index=True)
    await logins.retain("olga", ETL_LIMIT, b"", index=True)


async def _the_admins_pause_is_not_lifted_by_her(logins: Logins) -> None:
    """root pauses global; olga sets the same key's payload on her topic and clears it: the
    engine keeps root's pause (her clear removes only what her topic held), until root
    resumes. Her honest pause of acme's task:etl_* holds etl_load meanwhile."""
    paused = await logins.run("root", "pause", "global")
    assert paused.exit_code == 0, paused.output
    honest = await logins.run("olga", "pause", "task:etl_*", "--org", "acme")
    assert honest.exit_code == 0, honest.output
    engine, recorder = logins.engine("acme", "p", presence=True)
    run = await _run_until(engine, recorder, [web_report(), etl_load()],
                           lambda: len(recorder.names(TaskBlocked)) == 2)  # fmt: skip
    try:
        await logins.retain("olga", constraint_topic(ETL), _forged("global"))
        await logins.retain("olga", constraint_topic(ETL), b"")
        cleared = await logins.run("olga", "resume", "task:etl_*", "--org", "acme")
        assert cleared.exit_code == 0, cleared.output
        await eventually(lambda: len(engine.constraints) == 1, timeout=10)
        assert {(c.scope, c.type) for c in engine.constraints} == {("global", "pause")}
        assert "web_report" not in recorder.names(TaskRunning)
        assert engine.stats.rejected_topic == 1
        resumed = await logins.run("root", "resume", "global")
        assert resumed.exit_code == 0, resumed.output
        assert await asyncio.wait_for(run, 30) == ["report", "loaded"]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def _another_scope_is_not_hers_to_write(logins: Logins) -> None:
    """The broker refuses olga's publish on the global scope's topic, whatever she indexes,
    on her glob's fleet-wide topic and on its topic in another org."""
    for scope in ("global", "task:etl_*", "org:globex/task:etl_*"):
        async with logins.connector("olga") as olga:
            await olga.publish(constraint_topic(scope, "pause"), _forged(scope), qos=1,
                               retain=True)  # fmt: skip
            await olga.flush(10)
            assert olga.stats.refused + olga.stats.dropped == 1, scope


async def _cancel_answers_are_read_by_their_org_only(logins: Logins) -> None:
    """root cancels a globex run: olga, subscribed to every answer she tries, gets none of it
    (mosquitto drops it per message; RabbitMQ refuses her subscription); her own cancel of an
    acme run is answered (and she reads it on acme's reply topics)."""
    gate = asyncio.Event()

    @task(name="etl_wait")
    async def etl_wait() -> None:
        await gate.wait()

    snooped = Inbox()
    snoop = logins.connector("olga")
    await snoop.connect(require=True)
    try:
        wide = "cascade/reply/#" if logins.broker.is_mosquitto else "cascade/reply/globex/#"
        await snoop.subscribe(wide, snooped)
        for org, user in (("globex", "root"), ("acme", "olga")):
            engine, recorder = logins.engine(org, "p", presence=True)
            run = await _run_until(engine, recorder, etl_wait(), _running("etl_wait", recorder))
            run_id = str(recorder.events[-1].run_id)
            answer = await logins.run(user, "cancel", run_id, "--org", org)
            assert answer.exit_code == 0, answer.output
            assert answer.stdout.startswith(f"cancelled run {run_id} on engine-1"), answer.output
            await asyncio.gather(run, return_exceptions=True)
    finally:
        await snoop.disconnect()
    assert all("/reply/acme/" in m.topic for m in snooped.all), [m.topic for m in snooped.all]


async def _all(logins: Logins, *steps: Callable[[Logins], Awaitable[None]]) -> None:
    for step in steps:
        await step(logins)


STEPS = (
    _fleet_steering_through_her_topics_is_refused,
    _the_admins_pause_is_not_lifted_by_her,
    _another_scope_is_not_hers_to_write,
    _cancel_answers_are_read_by_their_org_only,
)


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_an_operator_steers_and_reads_only_her_own_on_mosquitto(tmp_path: Path) -> None:
    with acl_mosquitto(generated_acl(ROLES, tmp_path, "mosquitto"), USERS) as broker:
        await _all(Logins(broker), *STEPS)


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
async def test_an_operator_steers_and_reads_only_her_own_on_rabbitmq(tmp_path: Path) -> None:
    with acl_rabbitmq(generated_acl(ROLES, tmp_path, "rabbitmq"), USERS) as broker:
        await _all(Logins(broker), *STEPS)
