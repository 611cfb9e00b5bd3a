"""The CLI's readers under the ACL `cascade acl` generates, as logins over less than global:
an operator over org:acme lists its org's held tasks and engines, asks why its run waits and
decides one by a prefix of its run's id, a viewer over project:acme/etl watches its project,
each within --org/--project; without them (or with an org the login lacks), a reader that
RabbitMQ or NATS refuses exits 1 saying why, never a "nothing" with exit 0. mosquitto grants
every subscription and drops, message by message, what the login may not read: there a reader
without scopes shows what it may read."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from cascade.interfaces.serving import served_topic
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskBlocked, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import (
    MOSQUITTO_ONLY,
    NO_NATS,
    Inbox,
    MosquittoBroker,
    NatsNode,
    RabbitMQBroker,
    nats_server_path,
    only_on_family,
    skip_on_family,
)

from .acl_logins import Logins, acl_mosquitto, acl_rabbitmq, generated_acl, passwords

ROLES = """
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
broker_users = ["vera"]

[[grant]]
role = "operator"
scopes = ["org:acme"]
broker_users = ["otto"]

[broker.engines]
"org:acme" = ["engine-1"]
"""
USERS = ("vera", "otto", "engine-1")


async def _scoped_readers(broker: MosquittoBroker | RabbitMQBroker | NatsNode) -> None:
    """engine-1 holds a task of an acme/etl run; otto (org:acme) and vera (project:acme/etl)
    read it within their scopes; without them, or in globex, RabbitMQ and NATS refuse and
    the CLI says so."""
    logins = Logins(broker)
    load_name = f"load_{uuid.uuid4().hex[:6]}"

    @task(name=load_name, on_failure="hold")
    async def load() -> int:
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

        async def cli(user: str, *args: str):  # type: ignore[no-untyped-def]
            return await asyncio.to_thread(logins.cascade, user, *args)

        held = await cli("otto", "held", "--org", "acme", "--json")
        assert held.exit_code == 0, held.output
        (one,) = json.loads(held.stdout)["held"]
        assert (one["run_id"], one["task_name"]) == (run_id, load_name)

        status = await cli("otto", "status", "--org", "acme", "--json")
        assert status.exit_code == 0, status.output
        sources = [e["source"] for e in json.loads(status.stdout)["engines"]]
        assert sources == ["engine-1"]

        why = await cli("otto", "why", run_id[:12], "--org", "acme", "--json")
        assert why.exit_code == 0, why.output
        (blocked,) = json.loads(why.stdout)["runs"]
        assert blocked["run_id"] == run_id

        watched = await cli("vera", "watch", "--project", "acme/etl", "--json", "--count", "1")
        assert watched.exit_code == 0, watched.output
        assert run_id in watched.stdout

        if broker.is_mosquitto:  # granted, and what otto may not read is dropped
            wide = await cli("otto", "held", "--json")
            assert wide.exit_code == 0, wide.output
            assert [h["run_id"] for h in json.loads(wide.stdout)["held"]] == [run_id]
        else:  # refused: RabbitMQ closes the connection, NATS says 0x80 in its SUBACK; exit 1
            said = (
                "the broker refused the subscription to cascade/"
                if isinstance(broker, NatsNode)
                else "the broker did not answer the subscription to cascade/"
            )
            for user, *args in (
                ("otto", "held", "--json"),
                ("otto", "status", "--json"),
                ("otto", "status", "--org", "globex"),
                ("vera", "watch", "--json", "--count", "1"),
                ("vera", "watch", "--project", "acme/web", "--json", "--count", "1"),
            ):
                refused = await cli(user, *args)
                assert refused.exit_code == 1, (args, refused.output)
                assert said in refused.output
                assert "--org ORG" in refused.output
                assert '"held": []' not in refused.stdout

        skipped = await cli("otto", "skip", run_id[:12], load_name, "--org", "acme", "--json")
        assert skipped.exit_code == 0, skipped.output
        assert json.loads(skipped.stdout)["outcome"] == "applied"
        with pytest.raises(DependencyMissingError):  # skipped: the run succeeds, no result
            await asyncio.wait_for(run, 30)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert engine.stats.decisions == 1


async def _a_scoped_operator_reruns(
    broker: MosquittoBroker | RabbitMQBroker | NatsNode, tmp_path: Path
) -> None:
    """engine-1 serves a workflow in acme/etl that fails until its cause is fixed; otto starts
    it, then reruns it by its short id, looked up in acme/etl's summaries (no history): within
    --org and --project; without them RabbitMQ and NATS refuse the lookup, said, exit 1."""
    logins = Logins(broker)
    name = f"etl_{uuid.uuid4().hex[:6]}"
    fixed = tmp_path / "fixed"

    @task(name=f"{name}_load")
    def load(n: int) -> int:
        if not fixed.exists():
            raise ValueError("the source is not there yet")
        return n

    def etl(n: int = 3) -> int:
        return load(n)  # type: ignore[return-value]

    connector = logins.connector("engine-1", presence=True, sourced_topics=True)
    engine = Engine(connector, org_id="acme", project_id="etl", results=str(tmp_path / "r"))
    announced = Inbox()
    async with logins.connector("otto") as otto:
        await otto.subscribe(served_topic("acme", "etl", "engine-1"), announced)
        serving = asyncio.create_task(engine.serve({name: etl}))
        try:
            await announced.until(lambda m: bool(m.payload))

            async def cli(*args: str):  # type: ignore[no-untyped-def]
                return await asyncio.to_thread(logins.cascade, "otto", *args)

            place = ("--org", "acme", "--project", "etl")
            started = await cli("start", name, *place, "--wait")
            assert started.exit_code == 1, started.output  # it failed
            short = started.stdout.split(" as run ", 1)[1][:12]
            fixed.touch()
            if not broker.is_mosquitto:
                wide = await cli("rerun", short, "--wait")
                assert wide.exit_code == 1, wide.output
                assert "subscription to cascade/summary/" in wide.output
                assert "--org ORG" in wide.output
            rerun = await cli("rerun", short, "--project", "acme/etl", "--wait")
            assert rerun.exit_code == 0, rerun.output
            assert f"on engine-1 (a rerun of {short})" in rerun.stdout
            assert rerun.stdout.splitlines()[-1].endswith(" Succeeded")
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
async def test_scoped_logins_read_their_own_org_on_mosquitto(tmp_path: Path) -> None:
    """`cascade acl --mosquitto`, as generated, as a real mosquitto's acl_file."""
    with acl_mosquitto(generated_acl(ROLES, tmp_path, "mosquitto"), USERS) as broker:
        await _scoped_readers(broker)
        await _a_scoped_operator_reruns(broker, tmp_path)


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
@pytest.mark.timeout(300)
async def test_scoped_logins_read_their_own_org_on_rabbitmq(tmp_path: Path) -> None:
    """`cascade acl --rabbitmq`, as generated, loaded into a real RabbitMQ node."""
    with acl_rabbitmq(generated_acl(ROLES, tmp_path, "rabbitmq"), USERS) as broker:
        await _scoped_readers(broker)
        await _a_scoped_operator_reruns(broker, tmp_path)


@only_on_family("nats", "it starts a NATS node of its own")
@pytest.mark.timeout(300)  # each refused subscription is said a --timeout later
async def test_scoped_logins_read_their_own_org_on_nats(tmp_path: Path) -> None:
    """`cascade acl --nats`, as generated, included in a real nats-server's config."""
    if nats_server_path() is None:
        pytest.skip(NO_NATS)
    authorization = generated_acl(ROLES, tmp_path, "nats")
    with NatsNode(authorization=authorization, users=passwords(USERS)) as broker:
        await _scoped_readers(broker)
        await _a_scoped_operator_reruns(broker, tmp_path)
