"""`cascade retry|skip|complete|fail` and `cascade held`, against engines that hold tasks
(testkit's HoldingEngine, which answers as an engine does) on the in-memory broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.run_ids import LIVE_WAIT
from cascade.interfaces import Connector, StatusMessage, encode_payload, status_topic
from cascade.interfaces.commands import Decided
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.testkit import HeldTask, HoldingEngine

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"
OTHER = "9b1f0c2d3e4a5b6c7d8e9f0a1b2c3d4e"
Invoke = Callable[..., Result]


class WithEngines(InMemoryConnector):
    """The command's connector, on a broker where engines holding ``runs``' tasks start first
    (in the command's own event loop) and heartbeat every 50 ms; the tasks' state (what was
    decided) outlives each command."""

    def __init__(
        self,
        broker: InMemoryBroker,
        runs: dict[str, list[HeldTask]],
        snapshots: bool = True,
        summaries: bool = False,
    ) -> None:
        super().__init__(broker, presence=False)
        self.runs = runs
        self.snapshots = snapshots
        self.summaries = summaries
        self.engines: list[HoldingEngine] = []

    async def connect(self, *, require: bool = False) -> None:
        for number, (run_id, tasks) in enumerate(self.runs.items(), 1):
            own = InMemoryConnector(self.broker, source_id=f"host-{number}", presence=False)
            await own.connect()
            engine = HoldingEngine(
                own,
                run_id,
                tasks,
                project_id=f"p{number}",
                heartbeat_every=0.05,
                snapshots=self.snapshots,
                summary=self.summaries,
            )
            await engine.start()
            self.engines.append(engine)
        await super().connect(require=require)

    async def disconnect(self) -> None:
        await super().disconnect()
        for engine in self.engines:
            await engine.stop()
            await engine.connector.disconnect()
        self.engines.clear()


@pytest.fixture
def runs() -> dict[str, list[HeldTask]]:
    return {
        RUN: [HeldTask("load-1", "load"), HeldTask("side-1", "side", error="KeyError: 'id'")],
        OTHER: [HeldTask("load-7", "load", attempt=3, error="TimeoutError: API")],
    }


@pytest.fixture
def cascade(invoke: Invoke, broker: InMemoryBroker, runs: dict[str, list[HeldTask]]) -> Invoke:
    """`cascade ARGS` with the engines of ``runs`` on the broker."""

    def factory(options: Any) -> Connector:
        return WithEngines(broker, runs)

    def run(*args: str) -> Result:
        return invoke(*args, "--timeout", "1", connector_factory=factory)

    return run


def test_a_retry_by_a_prefix_is_applied_and_said(
    cascade: Invoke, runs: dict[str, list[HeldTask]]
) -> None:
    result = cascade("retry", RUN[:12], "load", "--reason", "API back", "--as", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "retried load (load-1, attempt 1) of run 58a88765cea2 on host-1: attempt 2 starts\n"
    )
    decided = runs[RUN][0].decided[1]
    assert (decided.decision, decided.by, decided.reason) == ("retry", "alice", "API back")


def test_a_second_decision_on_the_hold_exits_1_naming_the_first(
    cascade: Invoke, runs: dict[str, list[HeldTask]]
) -> None:
    assert cascade("skip", RUN, "side", "--reason", "not today", "--as", "alice").exit_code == 0
    again = cascade("retry", RUN, "side-1", "--attempt", "1", "--as", "bob")
    assert again.exit_code == 1
    assert again.stdout == ""
    (line,) = again.stderr.splitlines()
    assert line.startswith(
        "cascade: side (side-1, attempt 1) of run 58a88765cea2: already decided: skip by alice "
    )
    assert line.endswith(" s ago (not today)")


def test_json_prints_the_request_and_the_answer(cascade: Invoke) -> None:
    result = cascade("fail", RUN, "load", "--json", "--as", "alice")
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    assert (said["run_id"], said["task"], said["decision"]) == (RUN, "load", "fail")
    assert (said["applied"], said["outcome"], said["owner"], said["refused"]) == (
        True,
        "applied",
        "host-1",
        0,
    )
    assert said["reply"]["decided"]["by"] == "alice"


def test_a_refusal_in_json_exits_1_too(cascade: Invoke) -> None:
    result = cascade("retry", RUN, "nope", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["outcome"] == "unknown_task"
    assert result.stderr == "cascade: run 58a88765cea2 has no task nope\n"


def test_complete_sends_its_result(cascade: Invoke, broker: InMemoryBroker) -> None:
    result = cascade("complete", RUN, "load", "--result", '{"rows": [1, 2]}')
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("completed load (load-1, attempt 1) of run 58a88765cea2")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["complete", RUN, "load", "--result", "{nope"], "invalid value for '--result': not JSON"),
        (["complete", RUN, "load", "--result", json.dumps("x" * 20_000)], "--result is 20,002"),
        (["retry", RUN], "give RUN and TASK, or --held"),
        (["retry", RUN, "load", "--held"], "--held decides on the held tasks it finds"),
        (
            ["skip", RUN, "load", "--dry-run"],
            "--dry-run, --allow-incomplete, --task and --error go",
        ),
        (["fail", RUN, "load", "--attempt", "0"], "--attempt"),
        (["retry", "xyz", "load"], "a run id is hex digits"),
        (["retry", RUN, "lo\x1bad"], "TASK holds '\\x1b'"),
        (["retry", RUN, "load", "--reason", ""], "--reason is empty"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(
    cascade: Invoke, runs: dict[str, list[HeldTask]], args: list[str], said: str
) -> None:
    result = cascade(*args)
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert all(not task.decided for tasks in runs.values() for task in tasks)


def test_no_engine_answering_exits_1(invoke: Invoke) -> None:
    result = invoke("retry", RUN, "load", "--timeout", "0.3", "--org", "o", "--project", "p")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"cascade: no engine answered for run {RUN} within 0.3 s")


def test_held_asks_the_runs_the_summaries_count_holds_in_without_listening(
    invoke: Invoke, broker: InMemoryBroker, runs: dict[str, list[HeldTask]]
) -> None:
    """Engines that keep summaries: the runs they count held tasks in are asked at once, so
    `held` answers in the time their snapshots take, not a heartbeat period (5 s)."""

    def factory(options: Any) -> Connector:
        return WithEngines(broker, runs, summaries=True)

    started = time.monotonic()
    result = invoke("held", "--json", "--timeout", "30", connector_factory=factory)
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    held = json.loads(result.stdout)["held"]
    assert sorted((h["run_id"], h["task_id"], h["error"]) for h in held) == [
        (RUN, "load-1", "ValueError: the API is down"),
        (RUN, "side-1", "KeyError: 'id'"),
        (OTHER, "load-7", "TimeoutError: API"),
    ]
    assert took < LIVE_WAIT, took


def test_held_finds_a_task_held_since_its_engines_last_summary(
    invoke: Invoke, broker: InMemoryBroker, runs: dict[str, list[HeldTask]], publish_retained: Any
) -> None:
    """A summary is up to a second behind: one listing the runs with nothing held yet still
    leads to them (each live run listed is asked), and their held tasks are listed."""
    for number, run_id in enumerate(runs, 1):
        listed = SummaryRun(run_id=run_id, org_id="local", project_id=f"p{number}",
                            status="Running", started="2026-11-27T10:00:00+00:00",
                            tasks=TaskTally(running=1))  # fmt: skip
        summary = EngineSummary(source=f"host-{number}", listed=[listed])
        for at, said in summary_messages(summary):
            publish_retained(at, encode_payload(said))

    def factory(options: Any) -> Connector:
        return WithEngines(broker, runs)  # engines that keep no summary of their own

    result = invoke("held", "--json", "--timeout", "30", connector_factory=factory)
    assert result.exit_code == 0, result.output
    held = json.loads(result.stdout)["held"]
    assert len(held) == 3


def test_held_lists_every_held_task_fleet_wide(cascade: Invoke) -> None:
    result = cascade("held", "--json")
    assert result.exit_code == 0, result.output
    held = json.loads(result.stdout)["held"]
    assert sorted((h["run_id"], h["task_id"], h["attempt"]) for h in held) == [
        (RUN, "load-1", 1),
        (RUN, "side-1", 1),
        (OTHER, "load-7", 3),
    ]
    load7 = next(h for h in held if h["task_id"] == "load-7")
    assert (load7["error"], load7["default"], load7["source"]) == (
        "TimeoutError: API",
        "fail",
        "host-2",
    )
    assert load7["deadline"] is not None
    assert load7["run_blocked"] == 1


@pytest.mark.parametrize(
    ("filters", "found"),
    [
        (["--task", "side"], ["side-1"]),
        (["--task", "lo*"], ["load-1", "load-7"]),
        (["--error", "timeout"], ["load-7"]),
        (["--project", "p1"], ["load-1", "side-1"]),
        (["--org", "elsewhere"], []),
    ],
)
def test_held_filters(cascade: Invoke, filters: list[str], found: list[str]) -> None:
    result = cascade("held", "--json", *filters)
    assert result.exit_code == 0, result.output
    assert sorted(h["task_id"] for h in json.loads(result.stdout)["held"]) == found


def test_held_as_a_table(cascade: Invoke) -> None:
    result = cascade("held", "--task", "side")
    assert result.exit_code == 0, result.output
    assert "58a88765cea2" in result.stdout
    assert "side (side-1)" in result.stdout
    assert "KeyError: 'id'" in result.stdout
    assert max(map(len, result.stdout.splitlines())) <= 80  # rich's width off a terminal


def test_retry_held_decides_every_match_at_its_attempt(
    cascade: Invoke, runs: dict[str, list[HeldTask]]
) -> None:
    dry = cascade("retry", "--held", "--task", "load", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert sorted(dry.stdout.splitlines()) == [
        "would retry load (load-1, attempt 1) of run 58a88765cea2 on host-1: ValueError: the API "
        "is down",
        "would retry load (load-7, attempt 3) of run 9b1f0c2d3e4a on host-2: TimeoutError: API",
    ]
    assert not runs[RUN][0].decided
    done = cascade("retry", "--held", "--task", "load", "--as", "alice")
    assert done.exit_code == 0, done.output
    assert len(done.stdout.splitlines()) == 2
    assert runs[RUN][0].decided[1].decision == "retry"
    assert runs[OTHER][0].decided[3].by == "alice"
    assert not runs[RUN][1].decided


def test_held_decisions_exit_1_unless_all_are_applied(
    cascade: Invoke, runs: dict[str, list[HeldTask]]
) -> None:
    """One of the holds was decided by someone else meanwhile: its line says so, exit 1."""
    runs[RUN][1].decided[1] = Decided(decision="skip", attempt=1, by="carol")
    result = cascade("fail", "--held", "--project", "p1", "--json")
    assert result.exit_code == 1
    outcomes = sorted(json.loads(line)["outcome"] for line in result.stdout.splitlines())
    assert outcomes == ["already_decided", "applied"]
    assert result.stderr == "cascade: 1 of 2 decisions not applied\n"


def test_nothing_held_nothing_decided(invoke: Invoke) -> None:
    result = invoke("skip", "--held", "--timeout", "0.2")
    assert result.exit_code == 0
    assert result.stderr == "cascade: no task is held for a decision that matches\n"
    listed = invoke("held", "--timeout", "0.2")
    assert listed.stdout == "no task is held for a decision\n"


def test_why_says_a_held_task_waits_for_a_decision(cascade: Invoke) -> None:
    result = cascade("why", RUN)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "run 58a88765cea2 (host-1): Running, 2 held"
    assert lines[1].startswith("  load (load-1) held ")
    assert (
        ": failed (ValueError: the API is down); awaits a decision on attempt 1 (fail at "
        in (lines[1])
    )
    assert lines[1].endswith(
        ", unless decided): cascade retry|skip|complete|fail 58a88765cea2 load-1"
    )


def test_why_says_when_the_engine_did_not_say_the_errors(
    invoke: Invoke, broker: InMemoryBroker, runs: dict[str, list[HeldTask]]
) -> None:
    """An engine that answers no snapshot: its held tasks are listed from its heartbeats,
    without their errors, and stderr says so."""

    def factory(options: Any) -> Connector:
        return WithEngines(broker, runs, snapshots=False)

    result = invoke("why", RUN, "--timeout", "0.5", connector_factory=factory)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "cascade: no snapshot of run 58a88765cea2 from its engine within 0.5 s: its held tasks "
        "are listed without their errors\n"
    )
    assert "  load (load-1) held " in result.stdout
    assert ": failed; awaits a decision on attempt 1 (" in result.stdout


@pytest.fixture
def gated(invoke: Invoke, broker: InMemoryBroker) -> tuple[Invoke, HeldTask]:
    """`cascade ARGS` with an engine whose run holds a gate awaiting approval."""
    gate = HeldTask("gate-2", "gate", prompt="Deploy v1.2 to production?")
    runs = {RUN: [gate]}

    def factory(options: Any) -> Connector:
        return WithEngines(broker, runs)

    def run(*args: str) -> Result:
        return invoke(*args, "--timeout", "1", connector_factory=factory)

    return run, gate


def test_held_lists_a_gate_awaiting_approval_with_its_prompt(
    gated: tuple[Invoke, HeldTask],
) -> None:
    cascade, _ = gated
    listed = cascade("held", "--json")
    assert listed.exit_code == 0, listed.output
    (held,) = json.loads(listed.stdout)["held"]
    assert (held["task_id"], held["awaits_approval"], held["prompt"], held["error"]) == (
        "gate-2",
        True,
        "Deploy v1.2 to production?",
        "",
    )
    table = cascade("held")
    rows = [line.split("│") for line in table.stdout.splitlines() if line.startswith("│")]
    error = " ".join(word for row in rows for word in row[4].split())  # its words, folded
    assert error == "awaiting approval: Deploy v1.2 to production?"
    why = cascade("why", RUN)
    assert 'awaits approval: "Deploy v1.2 to production?" (fail at ' in why.stdout
    assert why.stdout.rstrip().endswith("cascade complete|fail|skip 58a88765cea2 gate-2")


def test_complete_without_a_result_approves_a_gate_and_retry_is_refused(
    gated: tuple[Invoke, HeldTask],
) -> None:
    cascade, gate = gated
    refused = cascade("retry", RUN, "gate")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "cascade: gate (gate-2) of run 58a88765cea2 is a gate: it has no attempt to retry "
        "(approve it with complete, reject it with fail, or skip it)\n"
    )
    approved = cascade("complete", RUN, "gate", "--as", "alice", "--json")
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.stdout)["outcome"] == "applied"
    assert gate.decided[1].by == "alice"


def test_retry_held_leaves_the_gates_out(gated: tuple[Invoke, HeldTask]) -> None:
    """A gate cannot be retried: `retry --held` picks no gate (nothing matches), `skip --held`
    does."""
    cascade, gate = gated
    retried = cascade("retry", "--held", "--dry-run")
    assert retried.stderr == "cascade: no task is held for a decision that matches\n"
    skipped = cascade("skip", "--held", "--dry-run")
    assert skipped.stdout.startswith("would skip gate (gate-2, attempt 1) of run 58a88765cea2")
    assert not gate.decided


def test_held_decisions_decide_nothing_when_a_runs_list_is_incomplete(
    invoke: Invoke, broker: InMemoryBroker, runs: dict[str, list[HeldTask]]
) -> None:
    """The engines never answer with their held tasks (every answer incomplete at --timeout):
    `skip --held` decides nothing, not even what heartbeats told of, says so and exits 1;
    --allow-incomplete decides what was found and still warns and exits 1."""

    def factory(options: Any) -> Connector:
        return WithEngines(broker, runs, snapshots=False)

    refused = invoke("skip", "--held", "--timeout", "0.5", connector_factory=factory)
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        "cascade: the held tasks of 2 run(s) may not all be listed: their engine's answer did "
        "not come whole within 0.5 s (58a88765cea2, 9b1f0c2d3e4a); decided nothing: try a "
        "longer --timeout, or --allow-incomplete to decide on those found\n"
    )
    assert not any(task.decided for tasks in runs.values() for task in tasks)
    dry = invoke("skip", "--held", "--dry-run", "--timeout", "0.5", connector_factory=factory)
    assert (dry.exit_code, dry.stdout) == (1, "")
    decided = invoke(
        "skip", "--held", "--allow-incomplete", "--timeout", "0.5", connector_factory=factory
    )
    assert decided.exit_code == 1
    assert len(decided.stdout.splitlines()) == 3
    assert all(task.decided for tasks in runs.values() for task in tasks)
    assert decided.stderr == (
        "cascade: the held tasks of 2 run(s) may not all be listed: their engine's answer did "
        "not come whole within 0.5 s (58a88765cea2, 9b1f0c2d3e4a); decided on those found\n"
    )


def test_a_decision_on_a_lost_run_says_where_it_went_at_once(
    invoke: Invoke, publish_retained: Callable[[str, bytes], None]
) -> None:
    """The run's engine is offline (its will, retained) with the run live in its last summary,
    and another server's summary lists the run's carry-on: exit 1 at once, saying so, instead
    of waiting --timeout for an answer no engine can give."""
    now = "2026-11-29T05:00:00+00:00"
    carried = "0" * 31 + "2"

    def listed(run_id: str, lost: str | None = None) -> SummaryRun:
        return SummaryRun(
            run_id=run_id, org_id="local", project_id="etl", status="Running", started=now,
            tasks=TaskTally(running=1), carried_on_from=lost,
        )  # fmt: skip

    will = StatusMessage(status="offline", source="srv-1", session=1)
    publish_retained(status_topic("srv-1"), encode_payload(will))
    online = StatusMessage(status="online", source="srv-2", session=1)
    publish_retained(status_topic("srv-2"), encode_payload(online))
    for source, run in (("srv-1", listed(RUN)), ("srv-2", listed(carried, lost=RUN))):
        summary = EngineSummary(source=source, runs=RunTally(running=1), listed=[run])
        for topic, said in summary_messages(summary):
            publish_retained(topic, encode_payload(said))
    started = time.monotonic()
    result = invoke("retry", RUN, "load", "--timeout", "30", "--org", "local", "--project", "etl")
    assert time.monotonic() - started < 5
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"cascade: run {RUN} was lost when its engine srv-1 went offline; carried on as "
        f"{carried} at srv-2: decide there\n"
    )
