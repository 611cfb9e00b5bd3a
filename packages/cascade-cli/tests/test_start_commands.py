"""`cascade served`, `start` and `rerun`, against processes serving workflows (testkit's
ServingEngine, which answers as ``Engine.serve`` does) on the in-memory broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Connector,
    Envelope,
    LifecycleEvent,
    decode_envelope,
    encode_payload,
    events_topic,
)
from cascade.interfaces.serving import PlanStep, RunOrigin, ServedWorkflow, WorkflowParam
from cascade.testkit import KeptRun, ServingEngine

OLD = "58a88765cea2c1d0a1f3c2b7e9d84a61"
NIGHTLY = ServedWorkflow(
    name="nightly",
    params=[
        WorkflowParam(name="day", annotation="str"),
        WorkflowParam(
            name="rows", required=False, default=5, annotation="int", description="rows to load"
        ),
    ],
    doc="The nightly load.",
)
WEEKLY = ServedWorkflow(name="weekly")
Invoke = Callable[..., Result]
Servers = dict[str, dict[str, Any]]


class WithServers(InMemoryConnector):
    """The command's connector, on a broker where the processes of ``servers`` (by source:
    the ServingEngine's options) start serving first, in the command's own event loop; each
    command's stand-ins are kept in ``started`` for the test to look at."""

    def __init__(self, broker: InMemoryBroker, servers: Servers, started: list[ServingEngine]):
        super().__init__(broker, presence=False)
        self.servers = servers
        self.started = started
        self.mine: list[ServingEngine] = []

    async def connect(self, *, require: bool = False) -> None:
        for source, options in self.servers.items():
            own = InMemoryConnector(self.broker, source_id=source)
            await own.connect()
            workflows = options.pop("workflows", [NIGHTLY])
            engine = ServingEngine(own, workflows, **options)
            await engine.start()
            if options.get("gone"):
                await own.disconnect()
            self.mine.append(engine)
            self.started.append(engine)
        await super().connect(require=require)

    async def disconnect(self) -> None:
        await super().disconnect()
        for engine in self.mine:
            await engine.stop()
            await engine.connector.disconnect()
        self.mine.clear()


@pytest.fixture
def servers() -> Servers:
    return {"host-1": {}}


@pytest.fixture
def started() -> list[ServingEngine]:
    return []


@pytest.fixture
def cascade(
    invoke: Invoke, broker: InMemoryBroker, servers: Servers, started: list[ServingEngine]
) -> Invoke:
    """`cascade ARGS` with the serving processes of ``servers`` on the broker."""

    def factory(options: Any) -> Connector:
        return WithServers(broker, {s: dict(o) for s, o in servers.items()}, started)

    def run(*args: str) -> Result:
        return invoke(*args, "--timeout", "1", connector_factory=factory)

    return run


def test_served_lists_each_workflow_of_each_process(cascade: Invoke, servers: Servers) -> None:
    servers["host-2"] = {"workflows": [NIGHTLY, WEEKLY], "shared": True}
    result = cascade("served")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("nightly" in line and "host-1" in line and "online" in line for line in lines)
    assert any("weekly" in line and "host-2" in line and "online, shared" in line for line in lines)
    assert "day: str" in result.stdout
    assert "rows: int = 5" in result.stdout
    assert "│   rows to load " in result.stdout  # its description, indented under it
    assert "0/4 running" in result.stdout


def test_served_json_says_presence_and_the_announcement(cascade: Invoke) -> None:
    result = cascade("served", "--json")
    assert result.exit_code == 0, result.output
    (server,) = json.loads(result.stdout)["served"]
    assert (server["source"], server["online"], server["capacity"]) == ("host-1", True, 4)
    assert server["workflows"][0]["name"] == "nightly"
    assert server["workflows"][0]["params"][1]["description"] == "rows to load"


def test_served_lists_each_trigger_with_its_last_event_and_runs_started(
    cascade: Invoke, servers: Servers
) -> None:
    """Under the workflows, a table of triggers; in --json, each announcement's triggers."""
    report = {
        "name": "report_after_etl", "workflow": "nightly", "kind": "after",
        "on": "etl Succeeded", "events": 3, "started": 2,
        "last_event": "run 1234 of etl Succeeded on host-1", "paused": True, "paused_by": "alice",
    }  # fmt: skip
    servers["host-1"] = {"triggers": [report]}
    result = cascade("served")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if "report_after_etl" in line]
    assert "after: etl" in line  # folded in its column on a narrow terminal
    assert "online," in line
    assert "Triggers" in result.stdout
    assert "2 of" in line
    listed = cascade("served", "--json")
    (server,) = json.loads(listed.stdout)["served"]
    (trigger,) = server["triggers"]
    assert (trigger["name"], trigger["started"], trigger["events"]) == ("report_after_etl", 2, 3)


def test_served_says_when_nobody_serves(cascade: Invoke, servers: Servers) -> None:
    servers.clear()
    result = cascade("served")
    assert result.exit_code == 0
    assert result.stdout == "nobody serves a workflow (no announcement was heard)\n"


def test_start_says_the_run_it_started(cascade: Invoke, started: list[ServingEngine]) -> None:
    result = cascade(
        "start", "nightly", "--param", "day=mon", "-p", "rows=7", "--reason", "late", "--as", "al"
    )
    assert result.exit_code == 0, result.output
    ((run_id, request),) = started[0].started
    assert result.stdout == f"started nightly as run {run_id[:12]} on host-1\n"
    assert request.params == {"day": "mon", "rows": 7}
    assert (request.reason, request.issued_by) == ("late", "al")


def test_a_param_is_json_when_it_parses_else_text(
    cascade: Invoke, started: list[ServingEngine]
) -> None:
    result = cascade(
        "start", "nightly", "-p", "day=2026-11-25", "-p", 'rows="5"', "--json"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ((_, request),) = started[0].started
    assert request.params == {"day": "2026-11-25", "rows": "5"}
    reply = json.loads(result.stdout)
    assert (reply["outcome"], reply["source"], reply["workflow"]) == (
        "started",
        "host-1",
        "nightly",
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-p", "day"], "--param takes NAME=VALUE, not 'day'"),
        (["-p", "=mon"], "--param takes NAME=VALUE"),
        (["-p", "day=mon", "-p", "day=tue"], "--param day is given twice"),
        (["--reason", " "], "--reason is empty"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(
    cascade: Invoke, started: list[ServingEngine], args: list[str], said: str
) -> None:
    result = cascade("start", "nightly", *args)
    assert result.exit_code == 2
    assert said in result.stderr
    assert not started  # nothing was even connected


def test_a_bad_workflow_name_exits_2(cascade: Invoke) -> None:
    result = cascade("start", "night ly")
    assert result.exit_code == 2
    assert "a workflow's name is 1 to 64" in result.stderr


def test_a_refusal_exits_1_with_the_servers_reason(cascade: Invoke) -> None:
    result = cascade("start", "nightly", "-p", "colour=red")
    assert result.exit_code == 1
    assert result.stderr == (
        "cascade: host-1 refused to start nightly: nightly() got an unexpected keyword "
        "argument 'colour'\n"
    )


def test_a_refusal_in_json_is_the_reply_and_exit_1(cascade: Invoke, servers: Servers) -> None:
    servers["host-1"] = {"refuse": "busy"}
    result = cascade("start", "nightly", "-p", "day=mon", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "busy"


def test_nobody_serving_it_exits_1_saying_where_to_look(cascade: Invoke) -> None:
    result = cascade("start", "weekly")
    assert result.exit_code == 1
    assert result.stderr == (
        "cascade: nobody serves weekly (cascade served lists who serves what)\n"
    )


def test_no_answer_in_time_names_who_serves_it(cascade: Invoke, servers: Servers) -> None:
    servers["host-1"] = {"answer": False}
    result = cascade("start", "nightly", "-p", "day=mon")
    assert result.exit_code == 1
    assert result.stderr == (
        "cascade: no answer to start nightly within 1 s from host-1, which serves it\n"
    )


def test_on_picks_the_process(
    cascade: Invoke, servers: Servers, started: list[ServingEngine]
) -> None:
    servers["host-2"] = {}
    result = cascade("start", "nightly", "-p", "day=mon", "--on", "host-2")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("on host-2\n")
    assert [len(e.started) for e in started] == [0, 1]
    offline = cascade("start", "nightly", "-p", "day=mon", "--on", "host-3")
    assert offline.exit_code == 1
    assert "host-3 serves nothing" in offline.stderr


@pytest.mark.parametrize(("end", "code"), [("Succeeded", 0), ("Failed", 1)])
def test_wait_exits_with_the_runs_outcome(
    cascade: Invoke, servers: Servers, started: list[ServingEngine], end: str, code: int
) -> None:
    servers["host-1"] = {"end": end}
    result = cascade("start", "nightly", "-p", "day=mon", "--wait")
    assert result.exit_code == code, result.output
    ((run_id, _),) = started[0].started
    assert result.stdout == (
        f"started nightly as run {run_id[:12]} on host-1\nrun {run_id[:12]} {end}\n"
    )


def test_wait_in_json_adds_the_status(cascade: Invoke, servers: Servers) -> None:
    servers["host-1"] = {"end": "Failed"}
    result = cascade("start", "nightly", "-p", "day=mon", "--wait", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "Failed"


PLAN = [
    PlanStep(task_id="extract-1", task_name="extract", action="reuse", from_run=OLD),
    PlanStep(task_id="transform-1", task_name="transform", action="run", why="it failed"),
    PlanStep(task_id="load-1", task_name="load", action="force", why="result missing"),
]


@pytest.fixture
def keeping(servers: Servers) -> Servers:
    servers["host-1"] = {"kept": {OLD: KeptRun("nightly", {"day": "mon"})}, "plan": PLAN}
    return servers


def test_rerun_by_a_prefix_with_its_workflow_given(
    cascade: Invoke, keeping: Servers, started: list[ServingEngine]
) -> None:
    result = cascade("rerun", OLD[:12], "--workflow", "nightly", "-p", "rows=9")
    assert result.exit_code == 0, result.output
    ((run_id, request),) = started[0].started
    assert result.stdout == (
        f"started nightly as run {run_id[:12]} on host-1 (a rerun of {OLD[:12]})\n"
    )
    assert (request.rerun_of, request.rerun, request.params) == (OLD[:12], "failure", {"rows": 9})
    assert started[0].kept[run_id].params == {"day": "mon", "rows": 9}


@pytest.mark.parametrize(
    ("flags", "mode", "task"),
    [([], "failure", None), (["--from-failure"], "failure", None), (["--all"], "all", None),
     (["--from", "transform"], "from", "transform")],
)  # fmt: skip
def test_rerun_modes(
    cascade: Invoke,
    keeping: Servers,
    started: list[ServingEngine],
    flags: list[str],
    mode: str,
    task: str | None,
) -> None:
    result = cascade("rerun", OLD, "--workflow", "nightly", *flags)
    assert result.exit_code == 0, result.output
    ((_, request),) = started[0].started
    assert (request.rerun_of, request.rerun, request.from_task) == (OLD, mode, task)


def test_a_dry_run_prints_the_plan(
    cascade: Invoke, keeping: Servers, started: list[ServingEngine]
) -> None:
    result = cascade("rerun", OLD[:12], "--workflow", "nightly", "--dry-run")
    assert result.exit_code == 0, result.output
    assert not started[0].started
    out = result.stdout
    for header in ("TASK", "ACTION", "WHY", "FROM RUN"):
        assert header in out
    assert "extract" in out
    assert OLD[:12] in out
    assert "result missing" in out
    assert out.splitlines()[-1] == "1 to run, 1 to reuse, 1 to force; nothing was started"
    as_json = cascade("rerun", OLD[:12], "--workflow", "nightly", "--dry-run", "--json")
    reply = json.loads(as_json.stdout)
    assert (reply["outcome"], reply["rerun_of"], reply["plan_count"]) == ("planned", OLD, 3)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["58a88"], "give at least 6 hex digits"),
        (["nightly"], "a run id is hex digits"),
        ([OLD, "--all", "--from", "x", "--workflow", "nightly"], "not --from and --all"),
        ([OLD], "give --workflow NAME"),
        ([OLD, "--workflow", "nightly", "--dry-run", "--wait"], "a --dry-run starts none"),
    ],
)
def test_rerun_bad_input_exits_2(
    cascade: Invoke, keeping: Servers, args: list[str], said: str
) -> None:
    result = cascade("rerun", *args)
    assert result.exit_code == 2, result.output
    assert said in result.stderr


def test_rerun_of_a_run_not_kept_is_refused(cascade: Invoke, keeping: Servers) -> None:
    result = cascade("rerun", "abcdef12", "--workflow", "nightly")
    assert result.exit_code == 1
    assert result.stderr == (
        "cascade: host-1 refused to rerun nightly: no run abcdef12 in the results kept\n"
    )


def test_the_commands_are_listed_with_help(invoke: Invoke) -> None:
    listed = invoke("--help").stdout
    for name in ("served", "start", "rerun"):
        assert name in listed
    assert "--from-failure" in invoke("rerun", "--help").stdout
    assert "NAME=VALUE" in invoke("start", "--help").stdout


def _recorded(path: Path, run_id: str, workflow: str | None = None) -> None:
    """A history that recorded ``run_id`` (its ENGINE_STARTED, from a served ``workflow``)."""
    from cascade.history import History, Received

    origin = None if workflow is None else RunOrigin(workflow=workflow, params={"day": "mon"})
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=2, name=workflow, origin=origin)
    started = Envelope(run_id=run_id, org_id="o", project_id="p", source="host-1", seq=1, body=body)
    topic = events_topic("o", "p", run_id)
    raw = decode_envelope(json.loads(encode_payload(started)))
    with History(path, mode="write") as history:
        history.store([Received(topic, raw, time.time())])


def test_rerun_takes_the_whole_id_from_the_history(
    cascade: Invoke, keeping: Servers, started: list[ServingEngine], tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite"
    _recorded(db, OLD)
    result = cascade("rerun", OLD[:8], "--workflow", "nightly", "--db", str(db))
    assert result.exit_code == 0, result.output
    ((_, request),) = started[0].started
    assert request.rerun_of == OLD


def test_rerun_of_a_prefix_several_recorded_runs_have_exits_2(
    cascade: Invoke, keeping: Servers, started: list[ServingEngine], tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite"
    other = OLD[:8] + "0" * 24
    _recorded(db, OLD)
    _recorded(db, other)
    result = cascade("rerun", OLD[:8], "--workflow", "nightly", "--db", str(db))
    assert result.exit_code == 2
    assert "several runs' ids start with '58a88765'" in result.stderr
    assert not started


def _history_records_workflows() -> bool:
    try:
        from cascade.history import RunSummary
    except ImportError:
        return False
    return hasattr(RunSummary, "workflow")


@pytest.mark.skipif(
    not _history_records_workflows(),
    reason="the history records a run's workflow from its origin with migration 0013 (views49)",
)
def test_rerun_takes_the_workflow_from_the_history(
    cascade: Invoke, keeping: Servers, started: list[ServingEngine], tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite"
    _recorded(db, OLD, workflow="nightly")
    result = cascade("rerun", OLD[:12], "--db", str(db))
    assert result.exit_code == 0, result.output
    ((_, request),) = started[0].started
    assert (request.workflow, request.rerun_of) == ("nightly", OLD)
