"""`cascade record`, `runs`, `run`, `tasks` and `audit` (constraints and cancels) on a SQLite
history and the in-memory broker: what they show, their JSON, stored text shown inert, and their
exit codes."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, NotifyPost, Received
from cascade.interfaces import Connector, Constraint, Envelope, constraint_topic, decode_envelope
from cascade.interfaces.commands import decode_cancel_reply, reply_topic
from cascade.interfaces.notes import ClearNote, cleared_topic
from cascade.reader import SourceGaps
from cascade.runtime import Engine, TaskFailedError, task

T0 = 1_795_000_000.0  # 2026-11-18


def _invoke(*args: str, factory: Any = None, width: int = 250) -> Result:
    context = CliContext(console=Console(width=width))
    if factory is not None:
        context.connector_factory = factory
    return CliRunner().invoke(app, list(args), obj=context)


def _event(run_id: str, ts: float, body: dict[str, Any], seq: int | None = None) -> Received:
    raw = {
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
        "run_id": run_id,
        "org_id": "acme",
        "project_id": "shop",
        "source": "host-1",
        "body": body,
    }
    envelope = decode_envelope(raw if seq is None else {**raw, "seq": seq})
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", envelope, ts)


def _task(run_id: str, task_id: str, name: str, state: str, ts: float, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(run_id, ts, {**body, **extra})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A history with a succeeded run, a failed one (hostile text in it) and a pause cleared."""
    path = str(tmp_path / "history.sqlite3")
    start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}
    with History(path, mode="write") as history:
        history.store(
            [
                _event("aaaa1111", T0, start),
                _task("aaaa1111", "fetch-1", "fetch", "RUNNING", T0 + 1),
                _task("aaaa1111", "fetch-1", "fetch", "COMPLETED", T0 + 2, duration_ms=1000),
                _event(
                    "aaaa1111",
                    T0 + 3,
                    {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"},
                ),
                _event("bbbb2222", T0 + 10, start),
                _task("bbbb2222", "x-1", "evil\x1b]0;pwned\x07[bold]x", "RUNNING", T0 + 11),
                _task(
                    "bbbb2222",
                    "x-1",
                    "evil\x1b]0;pwned\x07[bold]x",
                    "FAILED",
                    T0 + 12,
                    duration_ms=1000,
                    error="ValueError: \x1b[2Jcleared [red]",
                ),
                _event(
                    "bbbb2222",
                    T0 + 13,
                    {
                        "type": "LifecycleEvent",
                        "event": "ENGINE_STOPPED",
                        "status": "Failed",
                        "error": "x-1 failed",
                    },
                ),
                Received("cascade/constraints/global/pause", Constraint.pause("global"), T0 + 5),
                Received("cascade/constraints/global/pause", None, T0 + 6),
            ]
        )
    return path


def test_runs_lists_newest_first(db: str) -> None:
    """A table of both runs, the failed one first, with its error; stored text never markup."""
    result = _invoke("runs", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.output.index("bbbb2222") < result.output.index("aaaa1111")
    assert "Failed" in result.output
    assert "x-1 failed" in result.output
    assert "completed 1" in result.output


def test_runs_json_and_filters(db: str) -> None:
    """--status failed --json: the failed run with its error and counts."""
    result = _invoke("runs", "--db", db, "--status", "failed", "--json")
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.output)
    assert (run["run_id"], run["status"], run["error"]) == ("bbbb2222", "Failed", "x-1 failed")
    assert run["tasks"] == {"FAILED": 1}
    assert run["duration"] == 3.0
    assert json.loads(_invoke("runs", "--db", db, "--project", "nope", "--json").output) == []
    assert _invoke("runs", "--db", db, "--since", "1h").output.startswith("no runs recorded")


def test_runs_and_run_say_what_is_missing(tmp_path: Path) -> None:
    """A run whose events 3, 4 and 6 never came: a missing column and note in `runs`, a line in
    `run`, and the recorder's gap count (its hostile name shown inert) under the table."""
    path = str(tmp_path / "gaps.sqlite3")
    running = {"type": "TaskStateEvent", "task_name": "t", "state": "RUNNING"}
    with History(path, mode="write") as history:
        history.store(
            [
                *(
                    _event("cccc3333", T0 + seq, {**running, "task_id": f"t-{seq}"}, seq=seq)
                    for seq in (1, 2, 5)
                ),
                _event("cccc3333", T0 + 9, {"type": "Heartbeat", "last_seq": 6}),
                _event("dddd4444", T0 + 1, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}),
            ],
            gaps={"host-1": SourceGaps(3, T0)},
            recorder="rec\x1b[31m[red]",
        )
    listed = _invoke("runs", "--db", path)
    assert listed.exit_code == 0, listed.output
    assert "missing" in listed.output
    assert "events the engine numbered that never reached the history" in listed.output
    assert "recorder rec\\x1b[31m[red] missed 3 events of host-1" in listed.output
    assert "\x1b" not in listed.output
    [run, _] = json.loads(_invoke("runs", "--db", path, "--json").output)
    assert (run["run_id"], run["missing_events"]) == ("cccc3333", 3)
    shown = _invoke("run", "cccc", "--db", path).output
    assert "missing: 3 events the engine numbered never reached the history" in shown


def test_runs_and_run_show_what_was_refused(tmp_path: Path) -> None:
    """A run whose engine is host-1: an event from another source and two conflicts its
    recorder refused are a column and a note in `runs`, a line in `run`, and in their JSON."""
    path = str(tmp_path / "refused.sqlite3")
    started = {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
    forged = _event("ffff6666", T0 + 2, started, seq=2)
    assert isinstance(forged.message, Envelope)
    forged = Received(
        forged.topic, msgspec.structs.replace(forged.message, source="attacker"), T0 + 2
    )
    with History(path, mode="write") as history:
        history.store([_event("ffff6666", T0 + 1, started, seq=1)])
        stored = history.store([forged], refused={("ffff6666", "conflict"): 2})
        assert stored.refused == 1
    listed = _invoke("runs", "--db", path).output
    assert "refused" in listed
    assert "no engine of it can have sent" in listed
    [run] = json.loads(_invoke("runs", "--db", path, "--json").output)
    assert run["refused"] == {"conflict": 2, "foreign source": 1}
    shown = _invoke("run", "ffff", "--db", path).output
    assert "refused: 2 conflict, 1 foreign source" in shown
    detail = json.loads(_invoke("run", "ffff", "--db", path, "--json").output)
    assert detail["refused"] == {"conflict": 2, "foreign source": 1}
    assert "also claimed by: attacker (1 refused)" in shown
    assert detail["claims"] == [{"source": "attacker", "refused": 1, "set_aside": 0}]


def test_run_says_which_source_was_believed_and_why(tmp_path: Path) -> None:
    """A run first heard from ``attacker`` (nothing vouching for it) is shown as its word only;
    once its engine's start vouches for ``host-1``, `run` names host-1 and why, and what the
    attacker said is set aside, under its name."""
    path = str(tmp_path / "claims.sqlite3")
    forged = _event("abab1212", T0 + 1, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"})
    assert isinstance(forged.message, Envelope)
    forged = Received(
        forged.topic, msgspec.structs.replace(forged.message, source="attacker"), T0 + 1
    )
    with History(path, mode="write") as history:
        history.store([forged])
        assert "engine attacker (unconfirmed: its word only)" in _invoke(
            "run", "abab", "--db", path
        ).output.replace("\n", " ")
        started = {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
        history.store(
            [_event("abab1212", T0 + 2, started, seq=1)], vouched={"abab1212": ("host-1", "start")}
        )
    shown = _invoke("run", "abab", "--db", path).output
    assert "engine host-1 (its start says so)" in shown
    assert "also claimed by: attacker (1 set aside)" in shown
    detail = json.loads(_invoke("run", "abab", "--db", path, "--json").output)
    assert (detail["source"], detail["vouched"]) == ("host-1", "start")


def test_runs_with_nothing_missing_have_no_missing_column(db: str) -> None:
    """Runs of engines that lost nothing (or do not number their events): no column, no note."""
    listed = _invoke("runs", "--db", db).output.split("\nhistory: ", 1)[0]  # not its path
    assert "missing" not in listed
    assert "refused" not in listed


def test_run_shows_every_task_inert(db: str) -> None:
    """One run by a prefix of its id: its tasks, states and error, escapes shown, not obeyed."""
    result = _invoke("run", "bbbb", "--db", db)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "evil\\x1b]0;pwned\\x07[bold]x" in result.output
    assert "ValueError: \\x1b[2Jcleared [red]" in result.output
    assert "failed" in result.output
    detail = json.loads(_invoke("run", "bbbb2222", "--db", db, "--json").output)
    assert [s["state"] for s in detail["tasks"][0]["states"]] == ["RUNNING", "FAILED"]
    assert detail["tasks"][0]["task_name"] == "evil\x1b]0;pwned\x07[bold]x"  # JSON escapes it


def test_tasks_and_audit(db: str) -> None:
    """Per task statistics and the constraint trail (all time: the fixture is days old)."""
    result = _invoke("tasks", "--db", db, "--since", "3650d", "--json")
    assert result.exit_code == 0, result.output
    stats = {s["task_name"]: s for s in json.loads(result.output)}
    assert stats["fetch"]["executions"] == 1
    assert stats["evil\x1b]0;pwned\x07[bold]x"]["failure_rate"] == 1.0
    table = _invoke("tasks", "--db", db, "--since", "3650d", "--name", "fe*")
    assert "fetch" in table.output
    assert "evil" not in table.output
    assert "rollup" not in table.output  # a few executions: exact
    rolled = _invoke("tasks", "--db", db, "--since", "3650d", "--rollup")
    assert "p50 and p95 from the hourly rollup: within 2.5 %" in rolled.output
    as_json = json.loads(
        _invoke("tasks", "--db", db, "--since", "3650d", "--rollup", "--json").output
    )
    assert {s["task_name"]: s["approximate"] for s in as_json}["fetch"] is True
    events = json.loads(_invoke("audit", "--db", db, "--since", "3650d", "--json").output)
    assert [(e["action"], e["scope"], e["type"]) for e in events] == [
        ("cleared", "global", "pause"),
        ("set", "global", "pause"),
    ]
    assert "cleared" in _invoke("audit", "--db", db, "--since", "3650d").output


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["runs", "--since", "soon"], 2, "is not an age"),
        (["runs", "--status", "broken"], 2, "unknown run status 'broken'"),
        (["run", "aaaa1119"], 1, "no run's id starts with 'aaaa1119'"),
        (["run", "aaaa1111x"], 2, "a run id is hex digits"),
        (["tasks", "--since", "-1d"], 2, "is not an age"),
    ],
)
def test_exit_codes(db: str, args: list[str], code: int, says: str) -> None:
    """Usage errors exit 2, an unknown run 1, each in one line."""
    result = _invoke(*args, "--db", db)
    assert result.exit_code == code
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_ambiguous_prefix_is_a_usage_error(db: str) -> None:
    """A prefix of two runs' ids, or none: exit 2, saying what to give."""
    with History(db, mode="write") as history:
        history.store([_task("aaaa3333", "a-1", "a", "RUNNING", T0)])
    result = _invoke("run", "aaaa", "--db", db)
    assert (result.exit_code, "several runs" in result.output) == (2, True)
    assert _invoke("run", "", "--db", db).exit_code == 2


def test_a_missing_history_is_one_line(tmp_path: Path) -> None:
    """Readers never create a database: a missing file exits 1 naming it."""
    missing = tmp_path / "none.sqlite3"
    for command in ("runs", "tasks", "audit"):
        result = _invoke(command, "--db", str(missing))
        assert result.exit_code == 1
        assert result.output.strip() == (
            f"cascade: no history at {missing} yet: record one with cascade record --db {missing}"
        )
    assert not missing.exists()


def test_an_unreachable_database_is_one_line() -> None:
    """A PostgreSQL that is not there: exit 1, one line, no password."""
    result = _invoke("runs", "--db", "postgresql://u:secret@127.0.0.1:1/history")
    assert result.exit_code == 1
    assert result.output.startswith("cascade: cannot open postgresql+psycopg://u:***@")
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    """Without cascade-history installed: one line naming the extra, exit 1."""
    monkeypatch.setitem(sys.modules, "cascade.history", None)
    for args in (["runs"], ["record", "--duration", "0"]):
        result = _invoke(*args, "--db", db)
        assert result.exit_code == 1
        assert "pip install 'cascade-cli[history]'" in result.output


@task
async def extract(n: int) -> int:
    return n


@task
async def validate_checksums(values: list[int]) -> None:
    raise ValueError("checksum mismatch in partition 5")


class _EngineRunsOnConnect(InMemoryConnector):
    """The recorder's connector: once it is connected (`cascade record` subscribes before), an
    engine runs a workflow with a failing task on the same broker while it records."""

    async def connect(self, *, require: bool = False) -> None:
        await super().connect(require=require)
        assert any("/telemetry/" in f for f in self._dispatcher.filters)
        self.workflow = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        engine = Engine(
            InMemoryConnector(self.broker, source_id="demo-engine"), heartbeat_interval=None
        )
        with pytest.raises(TaskFailedError):
            await engine.run(validate_checksums([extract(n) for n in range(3)]))


def test_record_then_runs_status_failed(tmp_path: Path) -> None:
    """`cascade record` prints its database, records an engine's run; `runs` finds the failure."""
    broker = InMemoryBroker()
    path = tmp_path / "h.sqlite3"

    def factory(options: BrokerOptions) -> Connector:
        return _EngineRunsOnConnect(broker, presence=False, source_id="recorder")

    result = _invoke("record", "--db", str(path), "--duration", "1", factory=factory)
    assert result.exit_code == 0, result.output
    first, *_, last = result.output.strip().splitlines()
    assert first == (f"recording localhost:1883 into {path} (keeping everything); Ctrl-C ends it")
    assert last.startswith(f"recorded into {path}: ")
    assert " 0 rejected, 0 refused, 0 dropped, 0 missed (gaps in the events' numbers)" in last
    failed = json.loads(_invoke("runs", "--db", str(path), "--status", "failed", "--json").output)
    [run] = failed
    assert (run["source"], run["tasks"]) == ("demo-engine", {"COMPLETED": 3, "FAILED": 1})
    assert run["error"].startswith("TaskFailedError: task 'validate_checksums' (")
    assert run["error"].endswith("failed: ValueError: checksum mismatch in partition 5")
    detail = json.loads(_invoke("run", failed[0]["run_id"], "--db", str(path), "--json").output)
    errors = [t["error"] for t in detail["tasks"] if t["state"] == "FAILED"]
    assert errors == ["ValueError: checksum mismatch in partition 5"]


class _GappyEngineOnConnect(InMemoryConnector):
    """Once the recorder is connected, an engine's events 1, 2 and 4 arrive (3 never does),
    a payload that is no JSON object (its connector rejects it), and an event of the run from
    another source (refused)."""

    async def connect(self, *, require: bool = False) -> None:
        await super().connect(require=require)
        async with InMemoryConnector(self.broker, presence=False) as engine:
            for seq in (1, 2, 4):
                body = {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
                envelope = _event("eeee5555", T0 + seq, body, seq=seq).message
                assert isinstance(envelope, Envelope)
                await engine.publish("cascade/telemetry/acme/shop/eeee5555/events", envelope)
            await engine.publish("cascade/telemetry/acme/shop/eeee5555/events", b"[1, 2]")
            forged = _event("eeee5555", T0 + 5, body, seq=5)
            assert isinstance(forged.message, Envelope)
            forged_envelope = msgspec.structs.replace(forged.message, source="attacker")
            await engine.publish("cascade/telemetry/acme/shop/eeee5555/events", forged_envelope)


def test_record_shows_progress_with_gaps_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, a progress line each second: events/s, stored, dropped, gaps, lag; the
    summary counts the event that never came and the payload its connector rejected."""
    broker = InMemoryBroker()
    screen = io.StringIO()
    context = CliContext(
        console=Console(file=screen, force_terminal=True, width=250),
        connector_factory=lambda options: _GappyEngineOnConnect(broker, presence=False),
    )
    path = tmp_path / "h.sqlite3"
    result = CliRunner().invoke(
        app, ["record", "--db", str(path), "--duration", "1.5"], obj=context
    )
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    progress = "events/s · stored 3 · duplicates 0 · rejected 1 · refused 1 · dropped 0 · gaps 1"
    assert progress in shown
    assert shown.rstrip().endswith(
        "5 received, 3 stored, 0 duplicates, 1 rejected, 1 refused, 0 dropped, 1 missed (gaps in "
        "the events' numbers)"
    )


def test_record_fails_fast_on_an_unreachable_database(tmp_path: Path) -> None:
    """A database it cannot open: exit 1, one line, before connecting to any broker."""
    result = _invoke("record", "--db", "postgresql://127.0.0.1:1/x", "--duration", "0")
    assert result.exit_code == 1
    assert result.output.startswith("cascade: cannot open postgresql+psycopg://127.0.0.1:1/x")


def test_record_fails_fast_on_an_unreachable_broker(tmp_path: Path) -> None:
    """No broker: exit 1 with the connector's one line."""
    result = _invoke(
        "record", "--db", str(tmp_path / "h.db"), "--host", "127.0.0.1", "--port", "1",
        "--timeout", "1", "--duration", "0",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.startswith("cascade: ")
    assert len(result.output.strip().splitlines()) == 1


def test_record_bad_keep_is_a_usage_error(tmp_path: Path) -> None:
    """--keep takes an age."""
    result = _invoke("record", "--db", str(tmp_path / "h.db"), "--keep", "forever")
    assert result.exit_code == 2


def test_record_asks_for_a_kept_session_with_a_client_id(tmp_path: Path) -> None:
    """--client-id: that client id, a session kept --session-expiry (7 days by default); the
    recorder's gap counts are under that name. Without it, a clean session."""
    seen: list[BrokerOptions] = []
    broker = InMemoryBroker()

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(broker, presence=False)

    db = str(tmp_path / "h.db")
    for args in (
        ["--client-id", "rec-1", "--protocol", "5"],
        ["--client-id", "rec-1", "--session-expiry", "1h"],
        [],
    ):
        result = _invoke("record", "--db", db, "--duration", "0", *args, factory=factory)
        assert result.exit_code == 0, result.output
    assert [(o.client_id, o.session_expiry, o.protocol) for o in seen] == [
        ("rec-1", 7 * 86400.0, "5"),
        ("rec-1", 3600.0, "3.1.1"),
        (None, None, "3.1.1"),
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--client-id", ""], "--client-id"),
        (["--protocol", "4"], "must be 3.1.1 or 5"),
        (["--session-expiry", "a week"], "is not an age"),
        (["--queue", "0"], "--queue"),
    ],
)
def test_record_options_that_cannot_work_are_usage_errors(
    tmp_path: Path, args: list[str], says: str
) -> None:
    """Exit 2, saying which option, before anything is opened."""
    result = _invoke("record", "--db", str(tmp_path / "h.db"), "--duration", "0", *args)
    assert result.exit_code == 2
    assert says in result.output
    assert not (tmp_path / "h.db").exists()


@task
async def load_table(n: int) -> int:
    await asyncio.sleep(0.02)  # long enough for the others to queue behind the limit
    return n


class _HeldEngineOnConnect(InMemoryConnector):
    """Once the recorder is connected: alice limits load_table to one at a time, with a
    reason, and an engine runs three of them (two wait behind the limit), then she clears it."""

    async def connect(self, *, require: bool = False) -> None:
        await super().connect(require=require)
        self.workflow = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        limit = Constraint.concurrency(
            "task:load_*", 1, reason="warehouse maintenance", issued_by="alice"
        )
        topic = constraint_topic("task:load_*", "concurrency")
        async with InMemoryConnector(self.broker, presence=False) as writer:
            await writer.publish(topic, limit, qos=1, retain=True)
            engine = Engine(
                InMemoryConnector(self.broker, source_id="held-engine"), heartbeat_interval=None
            )
            await engine.run([load_table(n) for n in range(3)])
            await writer.publish(topic, b"", qos=1, retain=True)  # as `cascade resume` does
            note = ClearNote(issued_by="bob", reason="maintenance over")
            await writer.publish(cleared_topic(topic), note, qos=1)


def test_who_and_why_are_recorded_audited_and_answer_why(tmp_path: Path) -> None:
    """What a constraint's writer said and what held each task reach `audit`, `run` and
    `why --history`, in words and in JSON."""
    broker = InMemoryBroker()
    path = str(tmp_path / "h.sqlite3")

    def factory(options: BrokerOptions) -> Connector:
        return _HeldEngineOnConnect(broker, presence=False, source_id="recorder")

    assert _invoke("record", "--db", path, "--duration", "1", factory=factory).exit_code == 0
    audit = json.loads(_invoke("audit", "--db", path, "--json").output)
    assert [(e["action"], e["issued_by"], e["reason"]) for e in audit] == [
        ("cleared", "bob", "maintenance over"),
        ("set", "alice", "warehouse maintenance"),
    ]
    table = _invoke("audit", "--db", path).output
    cleared, set_ = (line for line in table.splitlines() if "task:load_*" in line)
    assert "bob" in cleared
    assert "maintenance over" in cleared
    assert "alice" in set_
    assert "warehouse maintenance" in set_
    [run] = json.loads(_invoke("runs", "--db", path, "--json").output)
    shown = _invoke("run", run["run_id"], "--db", path).output
    assert "concurrency task:load_*" in shown  # the table says what held it; why, who and why
    why = _invoke("why", run["run_id"][:8], "--history", "--db", path)
    assert why.exit_code == 0, why.output
    lines = why.output.splitlines()
    assert lines[0] == f"run {run['run_id'][:12]} (held-engine): Succeeded"
    assert len(lines) == 3  # two of the three waited
    assert all(" was held " in line and "by alice" in line for line in lines[1:])
    answer = json.loads(_invoke("why", run["run_id"], "--history", "--db", path, "--json").output)
    assert [held["held_by"][0]["issued_by"] for held in answer["held"]] == ["alice", "alice"]
    nothing = _invoke("why", run["run_id"], "nope_*", "--history", "--db", path)
    assert nothing.output.splitlines()[1] == "  no task of it was held back that matches 'nope_*'"


def test_a_cancel_is_in_the_audit(tmp_path: Path) -> None:
    """A run's cancel beside a constraint: its JSON says who, why, when, which run and what
    was stopped; the table shows the run's short id as scope and what it stopped, inert."""
    path = str(tmp_path / "h.sqlite3")
    run_id = "58a88765cea2c1d0a1f3c2b7e9d84a61"
    reply = decode_cancel_reply(
        {
            "id": "9f1c0e2a4b6d48e0a1b2c3d4e5f60718",
            "run_id": run_id,
            "source": "host-1",
            "cancelled": [
                {"task_id": "crawl-2", "task_name": "crawl"},
                {"task_id": "x-1", "task_name": "evil\x1b]0;pwned\x07[bold]x"},
            ],
            "cancelled_count": 2,
            "abandoned": [{"task_id": "load-1", "task_name": "load"}],
            "abandoned_count": 1,
            "not_started": 17,
            "issued_by": "alice",
            "reason": "wrong input",
            "issued_at": T0 + 0.5,
        }
    )
    with History(path, mode="write") as history:
        history.store(
            [
                Received("cascade/constraints/global/pause", Constraint.pause("global"), T0),
                _event(run_id, T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}),
                Received(reply_topic("local", reply.id, reply.source), reply, T0 + 1),
            ]
        )
    events = json.loads(_invoke("audit", "--db", path, "--since", "3650d", "--json").output)
    assert [event["action"] for event in events] == ["cancelled", "set"]
    cancel = events[0]
    assert {key: cancel[key] for key in ("scope", "run_id", "source", "request_id")} == {
        "scope": f"run:{run_id}",
        "run_id": run_id,
        "source": "host-1",
        "request_id": reply.id,
    }
    assert (cancel["at"], cancel["issued_by"], cancel["reason"], cancel["issued_at"]) == (
        T0 + 1,
        "alice",
        "wrong input",
        T0 + 0.5,
    )
    assert cancel["stopped"]["not_started"] == 17
    assert [t["task_id"] for t in cancel["stopped"]["cancelled"]] == ["crawl-2", "x-1"]
    table = _invoke("audit", "--db", path, "--since", "3650d", width=260)  # the topic's org level
    assert table.exit_code == 0, table.output
    (line,) = (line for line in table.output.splitlines() if "cancelled" in line)
    assert f"run:{run_id[:12]} " in line
    assert "on host-1: cancelled 2 (crawl, evil\\x1b]0;pwned\\x07[bold]x)" in line
    assert "abandoned 1 (load), not started 17" in line
    assert "alice" in line
    assert "wrong input" in line
    assert "\x1b" not in table.output


def test_a_notifier_s_posts_are_in_the_audit(tmp_path: Path) -> None:
    """`cascade notify --db`'s posts: a `notified` row per post and per final failure, its type
    the event, its params where (redacted) and how it ended, its by the notifier."""
    path = str(tmp_path / "h.sqlite3")
    run_id = "58a88765cea2c1d0a1f3c2b7e9d84a61"
    with History(path, mode="write") as history:
        for at, outcome, error in ((T0, "posted", None), (T0 + 5, "failed", "answered 500")):
            history.record_post(NotifyPost(
                at=at, event="run.failed", event_key=f"run.failed:{run_id}",
                webhook="https://hooks.slack.com/…", outcome=outcome,
                attempts=1 if error is None else 5, notifier="host-1-42-ab", group="g",
                run_id=run_id, task_id="load-1", source="eng", status=200,
                error=error,
            ))  # fmt: skip
    events = json.loads(_invoke("audit", "--db", path, "--since", "3650d", "--json").output)
    assert [(e["action"], e["notified"]["outcome"]) for e in events] == [
        ("notified", "failed"),
        ("notified", "posted"),
    ]
    table = _invoke("audit", "--db", path, "--since", "3650d", width=260)
    assert table.exit_code == 0, table.output
    failed, posted = (line for line in table.output.splitlines() if "notified" in line)
    assert f"run:{run_id[:12]} " in posted
    assert "run.failed" in posted
    assert "posted to https://hooks.slack.com/… (1 attempt)" in posted
    assert "failed at https://hooks.slack.com/… after 5 attempts: answered 500" in failed
    assert "host-1-42-ab" in posted


def test_readers_leave_a_file_that_is_no_history_untouched(tmp_path: Path) -> None:
    """`cascade runs --db other.sqlite` (and every reader): one line, exit 1, the file's bytes
    and mtime as they were, no table added."""
    import sqlite3

    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    with connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    before = (other.read_bytes(), other.stat().st_mtime_ns)
    for command in (["runs"], ["run", "abcd"], ["tasks"], ["audit"], ["why", "abcd"]):
        result = _invoke(*command, "--db", str(other))
        assert result.exit_code == 1, (command, result.output)
        assert result.output.strip().endswith(
            f"{other} is not a Cascade history (no alembic_version or runs or task_events table)"
        ), command
    assert (other.read_bytes(), other.stat().st_mtime_ns) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.sqlite"]


def test_an_older_history_is_not_migrated_by_a_reader(tmp_path: Path) -> None:
    """A history at an older revision: readers say how to migrate and leave it; `cascade
    history status` says what is pending, `migrate --sql` prints SQL and changes nothing,
    `migrate` brings it up to date, and then readers read it."""
    import sqlalchemy as sa
    from alembic import command as alembic

    from cascade.history import alembic_config, schema_status

    path = tmp_path / "old.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        alembic.upgrade(alembic_config(connection), "0004")
    engine.dispose()
    result = _invoke("runs", "--db", str(path))
    assert result.exit_code == 1
    assert result.output.strip().startswith(
        f"cascade: {path} is at schema revision 0004, older than this Cascade's"
    )
    assert f"cascade history migrate --db {path}" in result.output
    status = _invoke("history", "status", "--db", str(path))
    assert status.exit_code == 1
    assert "revision 0004" in status.output
    assert "to apply" in status.output
    sql = _invoke("history", "migrate", "--sql", "--db", str(path))
    assert sql.exit_code == 0
    assert "Running upgrade 0004 -> 0005" in sql.output
    assert schema_status(path).current == "0004"
    migrated = _invoke("history", "migrate", "--db", str(path))
    assert migrated.exit_code == 0, migrated.output
    assert schema_status(path).up_to_date
    assert _invoke("runs", "--db", str(path)).exit_code == 0
    assert _invoke("history", "status", "--db", str(path)).exit_code == 0


def test_migrate_refuses_a_file_that_is_no_history(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    with connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    before = other.read_bytes()
    for command in (["history", "migrate"], ["history", "migrate", "--sql"], ["record"]):
        result = _invoke(*command, "--db", str(other))
        assert result.exit_code == 1, (command, result.output)
        assert "is not a Cascade history" in result.output
    assert other.read_bytes() == before


def test_cascade_run_reads_a_big_run_a_page_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cascade run` (text with --limit 0, and --json) asks the history for pages of
    TASKS_PAGE tasks, never for every task at once, and prints them all: the JSON is the run's
    whole object (and its summary); without --limit, a page of 20 is all it reads."""
    import json

    from cascade.history import TASKS_PAGE

    path = str(tmp_path / "big.sqlite3")
    count = TASKS_PAGE + 2
    batch = [_event("cafe0001", T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"})]
    for index in range(count):
        batch.append(_task("cafe0001", f"t{index:05d}", "t", "RUNNING", T0 + index))
        batch.append(_task("cafe0001", f"t{index:05d}", "t", "COMPLETED", T0 + index + 0.5))
    with History(path, mode="write") as history:
        history.store(batch)
        whole = history.run("cafe0001")
    assert whole is not None
    limits: list[int | None] = []
    read, report = History.run, History.report

    def paged(self: History, run_id: str, **options: Any) -> Any:
        limits.append(options.get("limit"))
        return read(self, run_id, **options)

    def reported(self: History, run_id: str, **options: Any) -> Any:  # its first page
        limits.append(options.get("limit"))
        return report(self, run_id, **options)

    monkeypatch.setattr(History, "run", paged)
    monkeypatch.setattr(History, "report", reported)
    result = _invoke("run", "cafe", "--json", "--db", path)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer.pop("summary")["total"] == count
    expected = whole.to_json()
    no_logs = {"log_lines": 0, "log_dropped": 0, "log_lost": 0}
    expected["tasks"] = [{**one, **no_logs} for one in expected["tasks"]]
    assert answer == expected
    assert limits == [TASKS_PAGE, TASKS_PAGE]
    limits.clear()
    text = _invoke("run", "cafe0001", "--limit", "0", "--db", path)
    assert text.exit_code == 0, text.output
    assert text.output.count("│ COMPLETED │") == count  # a row for every task
    assert limits == [TASKS_PAGE, TASKS_PAGE]
    limits.clear()
    first = _invoke("run", "cafe0001", "--db", path)
    assert first.output.count("│ COMPLETED │") == 20
    assert limits == [20]


def test_runs_cut_by_limit_say_how_many_are_left_out(tmp_path: Path) -> None:
    """Seven runs, --limit 3: the table and stderr (under --json, whose list stays a list)
    say `showing 3 of 7 runs: --limit 0 for all`; --limit 0 lists all, and a list not cut
    says nothing more."""
    path = str(tmp_path / "history.sqlite3")
    start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1}
    with History(path, mode="write") as history:
        history.store([_event(f"{n:08x}", T0 + n, start) for n in range(7)])
    table = _invoke("runs", "--limit", "3", "--db", path)
    assert table.exit_code == 0, table.output
    assert "showing 3 of 7 runs: --limit 0 for all\n" in table.stdout
    listed = _invoke("runs", "--limit", "3", "--json", "--db", path)
    assert listed.exit_code == 0, listed.output
    assert [run["run_id"] for run in json.loads(listed.stdout)] == [
        "00000006",
        "00000005",
        "00000004",
    ]
    assert listed.stderr == "cascade: showing 3 of 7 runs: --limit 0 for all\n"
    everything = _invoke("runs", "--limit", "0", "--json", "--db", path)
    assert everything.exit_code == 0, everything.output
    assert (len(json.loads(everything.stdout)), everything.stderr) == (7, "")
    whole = _invoke("runs", "--limit", "7", "--db", path)
    assert " of 7 runs" not in whole.stdout


def test_audit_cut_by_limit_says_more_are_left_out(db: str) -> None:
    """Two audit events, --limit 1: the table and stderr (under --json, whose list stays a
    list) say more are left out and how to see them; --limit 0 and --limit 2 list both."""
    table = _invoke("audit", "--db", db, "--since", "3650d", "--limit", "1")
    assert table.exit_code == 0, table.output
    assert "showing the newest event; more are left out: --limit 0 for all\n" in table.stdout
    cut = _invoke("audit", "--db", db, "--since", "3650d", "--limit", "1", "--json")
    assert [event["action"] for event in json.loads(cut.stdout)] == ["cleared"]
    assert cut.stderr == (
        "cascade: showing the newest event; more are left out: --limit 0 for all\n"
    )
    for limit in ("0", "2"):
        whole = _invoke("audit", "--db", db, "--since", "3650d", "--limit", limit, "--json")
        assert (len(json.loads(whole.stdout)), whole.stderr) == (2, "")
