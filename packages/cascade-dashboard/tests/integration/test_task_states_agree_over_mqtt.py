"""Each task's final state agrees across every view, end to end on a real broker: a real engine
runs small workflows (a map, a failed task and what it skips, a condition that is false, and
generated ones: routers, a retried task, a held task decided) while
a recorder writes the history; what its own events say of each task is what the dashboard's
live view (``/api/state?run=``), its history (``/api/history/run``, a map's items included) and
``cascade run --json`` say, with the engine online and once it went offline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cascade.cli import app as cli_app
from cascade.cli.plumbing import BrokerOptions, CliContext, mqtt_connector
from cascade.connectors.mqtt import MqttConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Recorder
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Router,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskFailedError,
    TaskHeld,
    TaskRunning,
    TaskSkipped,
    task,
)
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint

Decision = Literal["retry", "skip", "complete", "fail"]

WAIT = 20.0
_FINAL = {TaskCompleted: "COMPLETED", TaskFailed: "FAILED", TaskSkipped: "SKIPPED",
          TaskCancelled: "CANCELLED"}  # fmt: skip


@pytest.fixture
async def hub(mqtt_broker: BrokerEndpoint) -> AsyncIterator[DashboardHub]:
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port, timeout=5.0)
    hub = DashboardHub(mqtt_connector(options), timeout=5.0)
    await hub.start()
    yield hub
    await hub.stop()


@dataclass(frozen=True)
class Said:
    """What one says of a task: its final state, whether it was skipped as not routed, and its
    last attempt; ``None`` where a view does not say it."""

    state: str
    not_routed: bool | None = None
    attempt: int | None = None


def agrees(view: dict[str, Said], engine: dict[str, Said]) -> bool:
    """The view says of each task what the engine said, where it says it at all."""
    return view.keys() == engine.keys() and all(
        view[t].state == s.state
        and view[t].not_routed in (None, s.not_routed)
        and view[t].attempt in (None, s.attempt)
        for t, s in engine.items()
    )


def said_of(task: dict[str, Any]) -> Said:
    """A view's task as JSON: its state, its error (or reason) and its attempts, where shown."""
    error = task.get("error")
    attempt = task.get("attempts")
    return Said(task["state"], None if error is None else "not routed" in error,
                attempt if isinstance(attempt, int) else None)  # fmt: skip


def engine_said(events: EventRecorder, run_id: str) -> dict[str, Said]:
    """Each task's last final state, as the engine's own events say it, and how many attempts
    it started (none for a task skipped before it ran)."""
    said: dict[str, Said] = {}
    for event in events.events:
        if isinstance(event, TaskEvent) and event.run_id == run_id:
            state = next((s for kind, s in _FINAL.items() if isinstance(event, kind)), None)
            if state is not None:
                started = [e for e in events.events if isinstance(e, TaskRunning)
                           and (e.run_id, e.task_id) == (run_id, event.task_id)]  # fmt: skip
                said[event.task_id] = Said(state, "not routed" in event.error, len(started))
    return said


async def live_said(http: httpx.AsyncClient, run_id: str) -> dict[str, Said]:
    answer = await http.get("/api/state", params={"run": run_id})
    assert answer.status_code == 200, answer.text
    return {t["task_id"]: said_of(t) for t in answer.json()["run"]["tasks"]}


async def history_said(http: httpx.AsyncClient, run_id: str) -> dict[str, Said]:
    """The run page's history: its tasks, and each map's items, page by page."""
    said: dict[str, Said] = {}

    async def pages(**params: str) -> dict[str, Any]:
        first: dict[str, Any] | None = None
        after: str | None = None
        while True:
            asked = {"id": run_id, **params, **({"after": after} if after else {})}
            answer = await http.get("/api/history/run", params=asked)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            first = first or body
            said.update({t["task_id"]: said_of(t) for t in body["run"]["tasks"]})
            after = body["next_after"]
            if after is None:
                return first

    first = await pages()
    for counted in first.get("maps") or []:
        await pages(map=counted["task_id"])
    return said


def cli_said(db: Path, run_id: str) -> dict[str, Said]:
    result = CliRunner().invoke(cli_app, ["run", run_id, "--db", str(db), "--json"],
                                obj=CliContext(console=Console(width=200)))  # fmt: skip
    assert result.exit_code == 0, result.output
    return {t["task_id"]: said_of(t) for t in json.loads(result.output)["tasks"]}


async def test_each_tasks_final_state_agrees_across_events_live_view_history_and_cli(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    @task(name=f"extract_{scope_name}")
    def extract() -> list[int]:
        return [1, 2, 3, 4]

    @task(name=f"double_{scope_name}")
    def double(row: int) -> int:
        return row * 2

    @task(name=f"total_{scope_name}")
    def total(rows: list[int]) -> int:
        return sum(rows)

    @task(name=f"broken_{scope_name}")
    def broken() -> int:
        raise ValueError("broken on purpose")

    @task(name=f"after_{scope_name}")
    def after(value: int) -> int:
        return value

    @task(name=f"check_{scope_name}")
    def check() -> bool:
        return False

    @task(name=f"load_{scope_name}")
    def load(value: int) -> int:
        return value

    workflows: list[Workflow] = [
        Workflow(lambda: [total(double.map(row=extract()))]),
        Workflow(lambda: [after(broken()), total(double.map(row=extract()))]),
        Workflow(lambda: [load(total(double.map(row=extract()))).run_if(check())]),
    ]
    said = await assert_views_agree(mqtt_broker, hub, tmp_path, scope_name, workflows)
    assert {s.state for run in said.values() for s in run.values()} == {
        "COMPLETED", "FAILED", "SKIPPED",
    }  # fmt: skip


@dataclass(frozen=True)
class Workflow:
    """A run's target, and the decisions to take, in turn, on what it holds."""

    target: Callable[[], Any]
    decisions: tuple[Decision, ...] = ()


async def run_workflow(engine: Engine, events: EventRecorder, workflow: Workflow) -> str:
    """Run it to its end, each decision taken through ``engine.decide`` once a task is held."""
    runs = len([e for e in events.events if isinstance(e, RunStarted)])
    running = asyncio.create_task(engine.run(workflow.target()))
    for turn, decision in enumerate(workflow.decisions, start=1):
        await events.until(lambda t=turn: len(held_in(events, runs)) >= t)  # type: ignore[misc]
        held = held_in(events, runs)[-1]
        reply = engine.decide(held.run_id, held.task_id, decision, issued_by="agree")
        assert reply is not None
        assert reply.applied, reply
    # a run with a failed task fails; one whose target was skipped has no result to give
    with contextlib.suppress(TaskFailedError, DependencyMissingError):
        await running
    return [e for e in events.events if isinstance(e, RunStarted)][runs].run_id


def held_in(events: EventRecorder, runs: int) -> list[TaskHeld]:
    """The holds of the run that started after ``runs`` runs."""
    starts = [e.run_id for e in events.events if isinstance(e, RunStarted)]
    run_id = starts[runs] if len(starts) > runs else None
    return [e for e in events.events if isinstance(e, TaskHeld) and e.run_id == run_id]


async def assert_views_agree(
    mqtt_broker: BrokerEndpoint, hub: DashboardHub, tmp_path: Path, scope_name: str,
    workflows: list[Workflow],
) -> dict[str, dict[str, Said]]:  # fmt: skip
    """Run each workflow on a real engine while a recorder writes the history; every view
    says of each task what the engine's events said, its engine online, then offline."""
    db = tmp_path / "h.sqlite3"
    history = History(f"sqlite:///{db}", mode="write")
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=f"agree-{scope_name}")
    engine = Engine(connector)
    events = EventRecorder()
    engine.events.subscribe(events)
    listening = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    app = create_app(hub, DashboardSettings(history=history))
    transport = httpx.ASGITransport(app=app)
    async with (
        listening,
        Recorder(listening, history) as recorder,
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        await connector.connect()
        run_ids = [await run_workflow(engine, events, workflow) for workflow in workflows]
        said = {run_id: engine_said(events, run_id) for run_id in run_ids}

        async def views(run_id: str) -> list[dict[str, Said]]:
            await recorder.flush(timeout=5)
            return [await live_said(http, run_id), await history_said(http, run_id),
                    await asyncio.to_thread(cli_said, db, run_id)]  # fmt: skip

        async def all_agree(when: str) -> None:
            deadline = time.monotonic() + WAIT
            for run_id in run_ids:
                # no event says when the broker delivered, nor when a batch was written
                while not all(agrees(view, said[run_id]) for view in await views(run_id)):
                    assert time.monotonic() < deadline, (
                        when, run_id, said[run_id], await views(run_id))  # fmt: skip
                    await asyncio.sleep(0.1)

        await all_agree("its engine online")
        await connector.disconnect()
        await all_agree("its engine offline")
    return said


def generated(rng: random.Random, name: str) -> list[Workflow]:
    """Routers (two consumers; one nested in another's route), a task retried then succeeding
    and a task held then decided, each with random choices: routes, failures, decisions."""

    def named(what: str, function: Callable[..., Any], **options: Any) -> Any:
        return task(name=f"{what}_{name}", **options)(function)

    def flaky(failures: int, what: str, **options: Any) -> Any:
        calls = [0]

        def attempt() -> int:
            calls[0] += 1
            if calls[0] <= failures:
                raise ValueError(f"attempt {calls[0]} fails on purpose")
            return calls[0]

        return named(what, attempt, **options)

    def value(what: str, result: Any) -> Any:
        return named(what, lambda: result)()

    take = named("take", lambda x: x)
    routes = ("a", "b")
    chosen, inner, outer = rng.choice(routes), rng.choice(routes), rng.choice(("x", "y"))

    def two_consumers() -> Any:
        branches = {r: value(f"route_{r}", r) for r in routes}
        router: Router[Any] = Router(value("pick", chosen), routes=branches)
        return [take(router), named("also", lambda x: x)(router)]

    def nested() -> Any:
        branches = {r: value(f"in_{r}", r) for r in routes}
        deeper: Router[Any] = Router(value("inner", inner), routes=branches)
        return take(Router(value("outer", outer), routes={"x": deeper, "y": value("out_y", 0)}))

    retries = rng.randint(1, 3)
    retried = flaky(rng.randint(1, retries), "retried").with_retry(retries + 1, delay=0)
    decision: Decision = rng.choice(("skip", "retry"))
    held = flaky(1, "held", on_failure="hold")
    return [
        Workflow(two_consumers),
        Workflow(nested),
        Workflow(lambda: take(retried())),
        Workflow(lambda: [take(held()), value("aside", 1)], (decision,)),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_routed_retried_and_decided_tasks_agree_across_every_view(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path, seed: int
) -> None:
    """Unchosen branches skipped ``not routed``, attempts counted and a held task's decision
    say the same in every view; the seed makes the routes and decisions reproducible."""
    workflows = generated(random.Random(seed), scope_name)
    said = await assert_views_agree(mqtt_broker, hub, tmp_path, scope_name, workflows)
    routed, *_ = said.values()
    assert sum(s.not_routed is True for s in routed.values()) == 1, routed
    assert any((s.attempt or 0) > 1 for run in said.values() for s in run.values()), said
