"""Operators steer their own org's and project's tasks from the CLI, under the ACL `cascade acl`
generates, on a real mosquitto and a real RabbitMQ (issue 90): olga, an operator over
``org:acme`` with ``task:*``, pauses acme's ``etl_*`` tasks (``cascade pause task:etl_* --org
acme``), which holds an acme engine's and not a globex engine's, pauses and resumes a narrower
glob and a project of acme, and is refused, by the broker, a pause in globex and a fleet-wide
one; gus, over ``project:globex/web`` with ``task:etl_*``, steers that project's ``etl_*`` only;
wanda, over ``org:acme`` with ``workflow:load``, pauses acme's served workflow load: its
schedule's slots are skipped and its starts refused until her resume (`cascade served` says it
is paused), and she may pause no other workflow nor another org's load.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from cascade.runtime import RunStarted, Schedule, TaskBlocked, task
from cascade.runtime.testing import eventually
from cascade.testkit import MOSQUITTO_ONLY, only_on_family, skip_on_family

from .acl_logins import Logins, acl_mosquitto, acl_rabbitmq, generated_acl

ROLES = """
[[grant]]
role = "operator"
scopes = ["org:acme", "task:*"]
broker_users = ["olga"]

[[grant]]
role = "operator"
scopes = ["project:globex/web", "task:etl_*"]
broker_users = ["gus"]

[[grant]]
role = "operator"
scopes = ["org:acme", "workflow:load"]
broker_users = ["wanda"]

[broker]
engines = ["engine-1"]
"""
USERS = ("olga", "gus", "wanda", "engine-1")


@task(name="etl_load")
async def etl_load() -> str:
    return "loaded"


@task(name="web_report")
async def web_report() -> str:
    return "report"


async def _an_org_operator_steers_her_org_s_tasks_only(logins: Logins) -> None:
    """olga's pause of acme's etl_* holds an acme engine's etl_load until her resume, and
    no globex engine's; her pauses in globex and fleet-wide are refused by the broker."""
    said = await logins.done("olga", "pause", "task:etl_*", "--org", "acme")
    assert said.startswith("paused org:acme/task:etl_*"), said
    globex, _ = logins.engine("globex", "web")
    assert await asyncio.wait_for(globex.run([etl_load(), web_report()]), 30) == [
        "loaded",
        "report",
    ]
    acme, recorder = logins.engine("acme", "etl")
    run = asyncio.create_task(acme.run([etl_load(), web_report()]))
    try:
        await asyncio.wait_for(
            recorder.until(lambda: "etl_load" in recorder.names(TaskBlocked)), 30
        )
        assert "web_report" not in recorder.names(TaskBlocked)
        assert [c.scope for c in acme.constraints] == ["org:acme/task:etl_*"]
        said = await logins.done("olga", "resume", "task:etl_*", "--org", "acme")
        assert said.startswith("resumed org:acme/task:etl_*"), said
        assert await asyncio.wait_for(run, 30) == ["loaded", "report"]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    await logins.refused("olga", "pause", "task:etl_*", "--org", "globex")
    await logins.refused("olga", "pause", "task:etl_*")
    await logins.refused("olga", "pause", "global")


async def _task_star_in_an_org_steers_any_glob_and_project_there(logins: Logins) -> None:
    """task:* lets olga pause and resume a narrower glob (the issue's `resume task:step`), a
    project of acme ($CASCADE_PROJECT), and acme's every task (no scope given)."""
    for args in (
        ("task:step", "--org", "acme"),
        ("task:load_[ab]", "--project", "acme/etl"),
        ("--org", "acme"),
    ):
        await logins.done("olga", "pause", *args)
        await logins.done("olga", "limit", *(args if args[0] != "--org" else ("task:*", *args)),
                          "--rate", "10/m")  # fmt: skip
        await logins.done("olga", "resume", *args)


async def _a_project_operator_steers_that_project_only(logins: Logins) -> None:
    """gus steers globex/web's etl_* only: not globex's, not acme's, not another glob."""
    said = await logins.done("gus", "pause", "task:etl_*", "--project", "globex/web")
    assert said.startswith("paused project:globex/web/task:etl_*"), said
    await logins.done("gus", "resume", "task:etl_*", "--org", "globex", "--project", "web")
    await logins.refused("gus", "pause", "task:etl_*", "--org", "globex")
    await logins.refused("gus", "pause", "task:etl_*", "--project", "acme/web")
    await logins.refused("gus", "pause", "task:*", "--project", "globex/web")


async def _a_workflow_pause_holds_its_new_runs_and_its_slots(logins: Logins) -> None:
    """engine-1 serves load in acme/etl with a schedule every second; wanda's pause of
    workflow:load in acme skips its slots (counted paused), `cascade served` says so, and
    olga's start of load is refused naming the pause; after wanda's resume, slots fire and
    olga's start starts. wanda's pauses of another workflow, and of load in globex, are
    refused by the broker."""

    def load():  # type: ignore[no-untyped-def]
        return web_report()

    engine, recorder = logins.engine("acme", "etl", presence=True)
    tick = Schedule(every=timedelta(seconds=1), workflow="load", catchup="none")

    def slots() -> int:
        origins = [e.origin for e in recorder.events if isinstance(e, RunStarted)]
        return sum(1 for o in origins if o is not None and o.schedule == "tick")

    serving = asyncio.create_task(engine.serve({"load": load}, schedules={"tick": tick}))
    try:
        await recorder.until(lambda: slots() >= 1, timeout=30)
        said = await logins.done("wanda", "pause", "workflow:load", "--org", "acme",
                                 "--reason", "db migration")  # fmt: skip
        assert said.startswith("paused org:acme/workflow:load"), said
        await eventually(lambda: engine.stats.slots_paused >= 1, timeout=30)
        fired = slots()
        listed = json.loads(await logins.done("olga", "served", "--json"))
        (workflow,) = listed["served"][0]["workflows"]
        assert (workflow["paused"], workflow["paused_by"], workflow["paused_reason"]) == (
            True, "wanda", "db migration"
        )  # fmt: skip
        refused = await logins.run("olga", "start", "load", "--org", "acme")
        assert refused.exit_code != 0, refused.output
        assert "load is paused by wanda: db migration" in refused.output
        assert slots() == fired  # no slot fired meanwhile
        await logins.done("wanda", "resume", "workflow:load", "--org", "acme")
        await recorder.until(lambda: slots() > fired, timeout=30)
        await logins.done("olga", "start", "load", "--org", "acme")
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    await logins.refused("wanda", "pause", "workflow:other", "--org", "acme")
    await logins.refused("wanda", "pause", "workflow:load", "--org", "globex")
    await logins.refused("wanda", "pause", "workflow:load")


STEPS = (
    _an_org_operator_steers_her_org_s_tasks_only,
    _task_star_in_an_org_steers_any_glob_and_project_there,
    _a_project_operator_steers_that_project_only,
    _a_workflow_pause_holds_its_new_runs_and_its_slots,
)


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_operators_steer_their_own_org_and_project_on_mosquitto(tmp_path: Path) -> None:
    with acl_mosquitto(generated_acl(ROLES, tmp_path, "mosquitto"), USERS) as broker:
        logins = Logins(broker)
        for step in STEPS:
            await step(logins)


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
@pytest.mark.timeout(300)  # each refused publish closes a connection: the CLI reconnects
async def test_operators_steer_their_own_org_and_project_on_rabbitmq(tmp_path: Path) -> None:
    with acl_rabbitmq(generated_acl(ROLES, tmp_path, "rabbitmq"), USERS) as broker:
        logins = Logins(broker)
        for step in STEPS:
            await step(logins)
