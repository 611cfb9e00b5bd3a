"""`cascade cancel` and the dashboard's Cancel: a command to the engine, answered by it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import Result

from cascade.cli._cancel import describe_reply, request_cancel
from cascade.cli.dashboard import DashboardHub
from cascade.cli.dashboard._api import create_app
from cascade.interfaces import CancelReply, TaskRef
from cascade.interfaces.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder

RUN = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret"


@task
async def forever() -> None:
    await asyncio.Event().wait()


async def _running(broker: InMemoryBroker) -> tuple[str, asyncio.Task[Any]]:
    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([forever(), forever()]))
    await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    return started.run_id, run


async def test_the_request_is_answered_by_the_engine_running_the_run() -> None:
    """request_cancel publishes the request, not retained, and returns the engine's answer,
    which carries who asked into the run's end."""
    broker = InMemoryBroker()
    run_id, run = await _running(broker)
    async with InMemoryConnector(broker, presence=False) as cli:
        reply = await request_cancel(cli, run_id, issued_by="alice", reason="oops", timeout=5)
    assert reply is not None
    assert (reply.run_id, reply.source, reply.cancelled_count) == (run_id, "engine-1", 2)
    with pytest.raises(RunCancelledError, match="cancelled by alice: oops"):
        await asyncio.wait_for(run, 5)
    assert [t for t in broker.retained_topics if "/status/" not in t] == []  # nothing kept


async def test_no_engine_no_answer() -> None:
    """A run nobody runs: None after the timeout, and nothing left behind at the broker."""
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as cli:
        assert await request_cancel(cli, RUN, issued_by=None, reason=None, timeout=0.2) is None
    assert broker.retained_topics == []


def test_what_the_command_says() -> None:
    """What was cancelled, what runs on in its thread, what will not start."""
    reply = CancelReply(
        id="r",
        run_id=RUN,
        source="host-1",
        cancelled=[TaskRef(task_id=f"a-{i}", task_name=f"a{i}") for i in range(6)],
        cancelled_count=7,
        abandoned=[TaskRef(task_id="s-1", task_name="sync_load")],
        abandoned_count=1,
        not_started=17,
    )
    assert describe_reply(reply) == (
        f"cancelled run {RUN} on host-1: 7 running tasks cancelled (a0, a1, a2, a3, a4 and 2 "
        "more), 1 left to finish in their threads, results discarded (sync_load), 17 not started"
    )


@pytest.mark.parametrize("run_id", ["xyz", RUN + "00", "g" * 32])
def test_a_malformed_run_id_exits_2(invoke: Callable[..., Result], run_id: str) -> None:
    """Not hex, or more than 32 digits: nothing is sent (a prefix: test_run_ids.py)."""
    result = invoke("cancel", run_id)
    assert result.exit_code == 2
    assert "a run id is hex digits: all 32, or a prefix only one run has, not" in result.output


def test_no_engine_answering_exits_1(invoke: Callable[..., Result]) -> None:
    """One line on stderr naming the run and the wait."""
    result = invoke("cancel", RUN, "--timeout", "0.3")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"cascade: no engine answered for run {RUN} within 0.3 s")
    assert len(result.stderr.splitlines()) == 1


async def test_the_dashboards_cancel_is_token_gated_and_answered(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """POST /api/runs/ID/cancel: 401 without the token; 400 for a bad id or reason; 504 when
    no engine answers; 200 with what the engine cancelled, issued by the token's name."""
    from cascade.cli.dashboard._guard import Tokens

    hub.timeout = 0.3
    tokens = Tokens.parse([f"bob={TOKEN}"], "dash")
    transport = httpx.ASGITransport(app=create_app(hub, token=tokens))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.post(f"/api/runs/{RUN}/cancel")).status_code == 401
        bad = await http.post("/api/runs/xyz/cancel", headers=auth)
        assert (bad.status_code, bad.json()["error"]) == (
            400,
            "a run id is hex digits: all 32, or a prefix only one run has, not 'xyz'",
        )
        reason = await http.post(f"/api/runs/{RUN}/cancel", headers=auth, json={"reason": 5})
        assert reason.status_code == 400
        assert (await http.post(f"/api/runs/{RUN}/cancel", headers=auth)).status_code == 504
        run_id, run = await _running(broker)
        hub.timeout = 5
        done = await http.post(f"/api/runs/{run_id}/cancel", headers=auth, json={"reason": "x"})
    assert done.status_code == 200, done.text
    assert done.json()["cancelled"]["cancelled_count"] == 2
    assert done.json()["said"].startswith(f"cancelled run {run_id} on engine-1: 2 running")
    with pytest.raises(RunCancelledError, match="cancelled by bob: x"):
        await asyncio.wait_for(run, 5)


def test_views_show_a_cancelled_run_as_cancelled() -> None:
    """ENGINE_STOPPED with cancelled: true is a Cancelled run; without it, Failed as ever."""
    import json

    from cascade.cli import WatchState
    from cascade.interfaces import Envelope, LifecycleEvent, Message, events_topic
    from cascade.interfaces.connector_kit import encode_payload

    state = WatchState()
    for run_id, cancelled in ((RUN, True), ("f" * 32, None)):
        body = LifecycleEvent(event="ENGINE_STOPPED", status="Failed", cancelled=cancelled)
        envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source="s", body=body)
        payload = json.loads(encode_payload(envelope))
        state.apply(Message(topic=events_topic("o", "p", run_id), payload=payload))
    assert (state.runs[RUN].status, state.runs["f" * 32].status) == ("Cancelled", "Failed")
