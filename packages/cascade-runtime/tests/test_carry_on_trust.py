"""Only the server that ran a run can lose it: a run's journal names the engine that runs it,
and a server carries a run on only for that engine's death (another's announcement of it is
refused, said and counted); the ids the servers make themselves (a carry-on's, a slot's) are
refused in start requests, answered with why. Two servers share a broker and a results store
(tests/faults/test_carry_trust.py runs the attacks on a mosquitto under the generated ACL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message
from cascade.interfaces.commands import reply_filter
from cascade.interfaces.serving import (
    StartReply,
    StartRequest,
    addressed_start_topic,
    decode_start_reply,
    served_topic,
)
from cascade.runtime import Engine, ResultStore, RunFinished, RunStarted
from cascade.runtime.testing import EventRecorder, eventually

ORG, PROJECT = "local", "default"


class Workflow:
    """``etl``: ``first`` (kept at once), then ``second``, which waits until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

        @cs.task(name="first")
        async def first() -> int:
            return 1

        @cs.task(name="second")
        async def second(value: int) -> int:
            await self.release.wait()
            return value + 1

        self.first, self.second = first, second

    def etl(self) -> Any:
        return self.second(self.first())


class Server:
    def __init__(self, engine: Engine, connector: InMemoryConnector) -> None:
        self.engine, self.connector = engine, connector
        self.recorder = EventRecorder()
        engine.events.subscribe(self.recorder)

    def started(self) -> list[str]:
        return [e.run_id for e in self.recorder.events if isinstance(e, RunStarted)]


@contextlib.asynccontextmanager
async def _serving(
    broker: InMemoryBroker, results: Path, source: str, workflows: dict[str, Any], **options: Any
) -> AsyncIterator[Server]:
    connector = InMemoryConnector(broker, source_id=source)
    engine = Engine(connector, heartbeat_interval=None, results=str(results))
    served = asyncio.create_task(engine.serve(workflows, **options))
    try:
        await eventually(lambda: connector.is_connected, timeout=10)
        yield Server(engine, connector)
    finally:
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served


async def _ask(broker: InMemoryBroker, source: str, request: StartRequest) -> StartReply:
    """``request`` sent to ``source`` by an operator, and its answer."""
    answers: list[Message] = []
    async with InMemoryConnector(broker, source_id="operator", presence=False) as operator:
        await operator.subscribe(reply_filter(request.id, org_id=ORG), answers.append)
        topic = addressed_start_topic(ORG, PROJECT, request.workflow, source)
        await operator.publish(topic, request, qos=1)
        await eventually(lambda: bool(answers), timeout=10)
    return decode_start_reply(answers[0].raw)


async def _forge(broker: InMemoryBroker, login: str, run_id: str) -> None:
    """``login`` announces ``run_id`` live as its own, then goes offline (its will)."""
    forger = InMemoryConnector(broker, source_id=login)
    await forger.connect()
    announcement = {
        "source": login,
        "org_id": ORG,
        "project_id": PROJECT,
        "workflows": [],
        "capacity": 1,
        "live": [{"run_id": run_id, "workflow": "etl"}],
    }
    await forger.publish(served_topic(ORG, PROJECT, login), announcement, qos=1, retain=True)
    await forger.crash()


def _status(store: ResultStore, run_id: str) -> str | None:
    """``run_id``'s status in ``store`` (``Unfinished`` while it runs); ``None`` before it
    began."""
    try:
        return store.manifest(run_id).status
    except cs.RerunError:
        return None


def _began(store: ResultStore, run_id: str) -> bool:
    return _status(store, run_id) == "Unfinished"


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


async def test_a_run_s_journal_names_the_engine_that_runs_it(
    broker: InMemoryBroker, tmp_path: Path
) -> None:
    """Its head while it runs (the Unfinished manifest) and its manifest at its end say the
    engine's source; a run without a connector names none."""
    results, work = tmp_path / "results", Workflow()
    store = ResultStore(str(results))
    async with _serving(broker, results, "server-a", {"etl": work.etl}) as server:
        await _ask(broker, "server-a", StartRequest(id="r1", workflow="etl"))
        await server.recorder.until(lambda: bool(server.started()))
        (run_id,) = server.started()
        await eventually(lambda: _began(store, run_id))
        assert store.manifest(run_id).source == "server-a"
        work.release.set()
        await eventually(lambda: _status(store, run_id) == "Succeeded")
        assert store.manifest(run_id).source == "server-a"
    alone = Engine(heartbeat_interval=None, results=str(results))
    await alone.run(work.etl())
    manifests = [store.manifest(p.stem) for p in (results / "runs").glob("*.json")]
    assert sorted(str(m.source) for m in manifests) == ["None", "server-a"]


async def test_a_run_announced_by_an_engine_that_did_not_run_it_is_not_carried_on(
    broker: InMemoryBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """engine-3 announces server-a's live run and goes offline: server-b refuses the carry-on,
    warns and counts it; when server-a itself dies, server-b carries the run on."""
    caplog.set_level(logging.WARNING, logger="cascade.runtime.serve")
    results, work = tmp_path / "results", Workflow()
    store = ResultStore(str(results))
    async with (
        _serving(broker, results, "server-a", {"etl": work.etl}) as owner,
        _serving(broker, results, "server-b", {"etl": work.etl}) as other,
    ):
        await _ask(broker, "server-a", StartRequest(id="r1", workflow="etl"))
        await owner.recorder.until(lambda: bool(owner.started()))
        (run_id,) = owner.started()
        await eventually(lambda: _began(store, run_id))
        await _forge(broker, "engine-3", run_id)
        await eventually(lambda: other.engine.stats.carry_ons_refused == 1)
        assert other.started() == []
        assert other.engine.stats.runs_carried_on == 0
        assert store.start_claim(f"carry-{run_id}") is None
        assert (
            f"run {run_id} of etl is not carried on: engine-3 went offline with it announced "
            "live, but its journal says server-a ran it" in caplog.text
        )
        assert not [e for e in owner.recorder.events if isinstance(e, RunFinished)]  # untouched
        await owner.connector.crash()  # the engine that runs it dies: acted on still
        await other.recorder.until(lambda: bool(other.started()), timeout=10)
        (carried,) = other.started()
        work.release.set()
        await eventually(lambda: _status(store, carried) == "Succeeded")
    assert store.manifest(carried).rerun_of == run_id
    assert other.engine.stats.runs_carried_on == 1
    assert other.engine.stats.carry_ons_refused == 1


async def test_a_journal_that_names_no_engine_is_not_carried_on(
    broker: InMemoryBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A journal whose head names no engine (written by hand, or by an engine before the
    journal said it) proves no server's death loses it: refused, said."""
    caplog.set_level(logging.WARNING, logger="cascade.runtime.serve")
    results, work = tmp_path / "results", Workflow()
    store = ResultStore(str(results))
    async with (
        _serving(broker, results, "server-a", {"etl": work.etl}) as owner,
        _serving(broker, results, "server-b", {"etl": work.etl}) as other,
    ):
        await _ask(broker, "server-a", StartRequest(id="r1", workflow="etl"))
        await owner.recorder.until(lambda: bool(owner.started()))
        (run_id,) = owner.started()
        await eventually(lambda: _began(store, run_id))
        head = results / "runs" / run_id / "began.json"
        began = json.loads(head.read_text())
        del began["source"]
        head.write_text(json.dumps(began))
        await owner.connector.crash()
        await eventually(lambda: other.engine.stats.carry_ons_refused == 1)
        assert "its journal says no engine ran it" in caplog.text
        assert other.started() == []
        work.release.set()


@pytest.mark.parametrize(
    ("request_id", "made_for"),
    [
        ("carry-" + "a" * 32, "the carry-on of a run whose engine died"),
        ("carry-" + "a" * 32 + "-2", "the carry-on of a run whose engine died"),
        ("carry-anything", "the carry-on of a run whose engine died"),
        ("sched-nightly-20261125T010000Z", "a schedule's slot"),
    ],
)
async def test_a_start_request_with_an_id_servers_make_is_refused_saying_why(
    broker: InMemoryBroker, tmp_path: Path, request_id: str, made_for: str
) -> None:
    """Refused before anything is asked or claimed, answered with why, counted in
    starts_reserved and starts_refused; the same request with a fresh id starts."""
    results, work = tmp_path / "results", Workflow()
    store = ResultStore(str(results))
    work.release.set()
    async with _serving(broker, results, "server-a", {"etl": work.etl}) as server:
        reply = await _ask(broker, "server-a", StartRequest(id=request_id, workflow="etl"))
        assert reply.outcome == "refused"
        said = f"request id {request_id} is one servers make themselves, for {made_for}"
        assert reply.error.startswith(said), reply.error
        assert "a start request takes a fresh id of its own" in reply.error
        assert store.start_claim(request_id) is None
        stats = server.engine.stats
        assert (stats.starts_reserved, stats.starts_refused, stats.starts_taken) == (1, 1, 0)
        assert server.started() == []
        fresh = await _ask(broker, "server-a", StartRequest(id="fresh-1", workflow="etl"))
        assert fresh.outcome == "started"
