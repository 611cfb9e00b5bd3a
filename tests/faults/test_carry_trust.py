"""Scenario: only the server that ran a run can lose it. Two servers of one workflow share a
results store on a mosquitto that enforces the ACL `cascade acl` generates; the logins of the
org (another engine's, an operator's) try to have a live run carried on while its server runs
it, or to keep it from being carried on when its server dies. Each runs with the shared store
in a directory and in an S3 bucket (``shared_store``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces.commands import reply_filter
from cascade.interfaces.serving import (
    StartReply,
    StartRequest,
    addressed_start_topic,
    decode_start_reply,
    served_topic,
)
from cascade.runtime import ResultStore
from cascade.runtime.testing import eventually
from cascade.testkit import (
    MOSQUITTO_ONLY,
    Inbox,
    MosquittoBroker,
    SharedStore,
    mosquitto_path,
    skip_on_family,
)

from .conftest import EngineProcess, Figures
from .test_carry_on import (
    KEEPALIVE,
    ORG,
    PROJECT,
    _kept,
    _manifest,
    _opened,
    _serving,
    _status,
    _step,
)

SERVER_PROCESS = Path(__file__).with_name("server_process.py")
ROLES = """
[[grant]]
role = "operator"
scopes = ["org:local"]
broker_users = ["otto"]

[broker.engines]
"org:local" = ["engine-1", "engine-3", "engine-4"]
"""
PASSWORDS = {name: f"{name}-pw" for name in ("otto", "engine-1", "engine-3", "engine-4")}

pytestmark = skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))


@pytest.fixture
def acl_broker(tmp_path: Path, prefix: str) -> Iterator[MosquittoBroker]:
    """A mosquitto of the test's own, its acl_file what `cascade acl --mosquitto` wrote."""
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    roles, out = tmp_path / "roles.toml", tmp_path / "acl"
    roles.write_text(ROLES, encoding="utf-8")
    command = ["acl", str(roles), "--mosquitto", "--prefix", prefix, "--output", str(out)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    with MosquittoBroker(users=PASSWORDS, acl=out.read_text(encoding="utf-8")) as broker:
        yield broker


def _login(broker: MosquittoBroker, prefix: str, user: str, *, presence: bool) -> MqttConnector:
    return MqttConnector(
        broker.host,
        broker.port,
        username=user,
        password=PASSWORDS[user],
        source_id=user,
        topic_prefix=prefix,
        presence=presence,
        sourced_topics=True,
    )


async def _server(
    broker: MosquittoBroker, prefix: str, login: str, results: SharedStore, *options: str
) -> EngineProcess:
    """``server_process.py`` serving ``etl`` as the engine login ``login``."""
    args = ["--port", str(broker.port), "--prefix", prefix, "--source", login]
    args += ["--username", login, "--password", PASSWORDS[login]]
    args += ["--results", results.url, "--keepalive", str(KEEPALIVE), *options]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVER_PROCESS),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **results.environment},
    )
    return EngineProcess(process)


@contextlib.asynccontextmanager
async def _fleet(
    broker: MosquittoBroker,
    prefix: str,
    results: SharedStore,
    processes: list[EngineProcess],
    *options: str,
) -> AsyncIterator[tuple[EngineProcess, EngineProcess, MqttConnector]]:
    """engine-1 and engine-4 serving ``etl`` with ``options``, sharing ``results``; otto, an
    operator over the org, connected once both serve."""
    owner = await _server(broker, prefix, "engine-1", results, *options)
    other = await _server(broker, prefix, "engine-4", results, *options)
    processes += [owner, other]
    async with _login(broker, prefix, "otto", presence=False) as otto:
        await _serving(otto, prefix, "engine-1")
        await _serving(otto, prefix, "engine-4")
        yield owner, other, otto


async def _ask(otto: MqttConnector, prefix: str, server: str, request: StartRequest) -> StartReply:
    """otto's start ``request`` sent to ``server``, and its answer."""
    replies = Inbox()
    handle = await otto.subscribe(reply_filter(request.id, prefix, ORG), replies)
    try:
        topic = addressed_start_topic(ORG, PROJECT, "etl", server, prefix)
        await otto.publish(topic, request, qos=1)
        return decode_start_reply((await replies.next(timeout=30)).raw)
    finally:
        await handle.unsubscribe()


async def _journaled(store: ResultStore, run_id: str, tasks: int) -> None:
    """Until ``run_id``'s journal lists at least ``tasks`` kept, the run not ended."""

    def journaled() -> bool:
        manifest = _manifest(store, run_id)
        return (
            manifest is not None
            and manifest.status == "Unfinished"
            and len(manifest.tasks) >= tasks
        )

    await eventually(journaled, timeout=10)


async def _warned(child: EngineProcess, needle: str, timeout: float) -> bool:
    """Whether ``child`` logs a warning that says ``needle`` within ``timeout`` seconds."""

    async def read() -> None:
        while needle not in (await child.expect("warning", timeout=timeout))["message"]:
            pass

    try:
        await asyncio.wait_for(read(), timeout)
    except (TimeoutError, EOFError):
        return False
    return True


async def test_a_login_of_the_org_that_announces_another_s_run_and_goes_offline_loses_nothing(
    acl_broker: MosquittoBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """engine-3 (an engine login of the org, serving nothing) announces engine-1's live run as
    its own, then says itself offline: engine-4 refuses the carry-on (the run's journal says
    engine-1 ran it), says why, and engine-1's run ends there alone."""
    figures.scenario = "carry-on forged by a login of the org, refused"
    results, store = shared_store, _opened(shared_store)
    fleet = _fleet(acl_broker, prefix, results, engine_processes, "--tasks", "12", "--sleep", "1")
    async with fleet as (owner, other, otto):
        await _ask(otto, prefix, "engine-1", StartRequest(id="nightly-7", workflow="etl"))
        lost = (await _step(owner, "running", 4))["run"]
        await _journaled(store, lost, 3)  # live: 8 steps (8 s) to go
        async with _login(acl_broker, prefix, "engine-3", presence=True) as forger:
            forged = {
                "source": "engine-3",
                "org_id": ORG,
                "project_id": PROJECT,
                "workflows": [],
                "capacity": 1,
                "running": 1,
                "live": [{"run_id": lost, "workflow": "etl"}],
            }
            await forger.publish(
                served_topic(ORG, PROJECT, "engine-3", prefix), forged, qos=1, retain=True
            )
            await forger.flush(10)
            assert forger.stats.refused == forger.stats.dropped == 0  # the ACL lets it
        # its graceful offline said: engine-4 hears a server die with engine-1's run live
        refused = await _warned(other, f"run {lost} of etl is not carried on", 2 * KEEPALIVE + 10)
        ended = await owner.expect("finished", timeout=60)
        await _status(store, lost, "Succeeded")
        os.kill(other.process.pid, signal.SIGKILL)
        await other.wait()  # every line it wrote
    carried = [line for line in other.lines if line.get("event") == "running"]
    assert carried == [], f"engine-4 ran {len(carried)} steps of a carry-on of a live run"
    assert refused, other.lines
    (warning,) = [line["message"] for line in other.lines if lost in line.get("message", "")]
    assert "engine-3 went offline" in warning, warning
    assert "says engine-1 ran it" in warning, warning
    assert (ended["run"], ended["status"]) == (lost, "Succeeded")
    ran = [line["i"] for line in owner.lines if line.get("event") == "running"]
    assert ran == list(range(1, 13))  # the owner's run, untouched
    figures.outcome = "ok"


async def test_a_start_request_with_a_carry_on_s_id_is_refused_and_the_run_is_carried_on(
    acl_broker: MosquittoBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """otto asks engine-4 to start etl with the id of the carry-on of engine-1's live run
    (``carry-RUN``, a valid id): refused, saying why, no claim taken; engine-1 killed,
    engine-4 carries the run on."""
    figures.scenario = "carry-on's id taken by a start request, refused"
    results, store = shared_store, _opened(shared_store)
    fleet = _fleet(acl_broker, prefix, results, engine_processes, "--stall-at", "6")
    async with fleet as (owner, other, otto):
        await _ask(otto, prefix, "engine-1", StartRequest(id="nightly-8", workflow="etl"))
        lost = (await _step(owner, "running", 6))["run"]
        await _kept(store, lost, 5)
        decoy_request = StartRequest(id=f"carry-{lost}", workflow="etl")
        decoy = await _ask(otto, prefix, "engine-4", decoy_request)
        assert decoy.outcome == "refused", decoy
        assert "servers make themselves" in (decoy.error or ""), decoy.error
        assert store.start_claim(f"carry-{lost}") is None
        os.kill(owner.process.pid, signal.SIGKILL)
        first = await other.expect("running", timeout=2 * KEEPALIVE + 10)
        carried = first["run"]
        await _status(store, carried, "Succeeded")
    assert first["i"] == 6
    assert store.manifest(carried).rerun_of == lost
    figures.outcome = "ok"
