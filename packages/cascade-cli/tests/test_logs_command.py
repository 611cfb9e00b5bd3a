"""`cascade logs`: a run's lines from the history (a fake of ``History.log_lines`` until the
history records them), and with -f live from the broker until the run stops."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from msgspec import structs
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit import Subscription
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received
from cascade.interfaces import (
    Connector,
    Envelope,
    Heartbeat,
    LifecycleEvent,
    MessageCallback,
    StatusMessage,
    SyncCallback,
    decode_envelope,
    events_topic,
    heartbeat_topic,
    status_topic,
)
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"
T0 = 1_795_000_000.0  # 2026-11-18
CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d ")


@dataclass(frozen=True)
class _Recorded:
    """The fields of ``cascade.history.RecordedLogLine`` (the history's, being written)."""

    id: int
    run_id: str
    task_id: str
    task_name: str
    attempt: int
    n: int
    ts: float
    level: str
    level_number: int
    logger: str
    message: str
    stream: str | None = None
    source: str = "host-1"
    trace_id: str | None = None
    span_id: str | None = None


def _recorded(n: int, task: str = "load", level: str = "INFO") -> _Recorded:
    number = {"INFO": 20, "WARNING": 30}[level]
    return _Recorded(n, RUN, f"{task}-1", task, 1, n, T0 + n, level, number, "etl", f"kept {n}")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``History.log_lines`` answers from three recorded lines (the history's API, faked
    until it is merged), and says how it was asked."""
    calls: list[dict[str, Any]] = []
    lines = [_recorded(1), _recorded(2, level="WARNING"), _recorded(3, "send")]

    def log_lines(self: History, run_id: str, **query: Any) -> list[_Recorded]:
        calls.append({"run_id": run_id, **query})
        after, limit = query.get("after", 0), query.get("limit")
        task = query.get("task")
        found = [
            line
            for line in lines
            if line.run_id == run_id
            and line.id > after
            and (task is None or fnmatch.fnmatchcase(line.task_name, task))
        ]
        return found[:limit]

    monkeypatch.setattr(History, "log_lines", log_lines, raising=False)
    return calls


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A history with the run, ended."""
    path = str(tmp_path / "history.sqlite3")
    with History(path, mode="write") as history:
        history.store([_event({"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, T0)])
    return path


def _event(body: dict[str, Any], ts: float) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": RUN,
           "org_id": "o", "project_id": "p", "source": "host-1", "body": body}  # fmt: skip
    return Received(events_topic("o", "p", RUN), decode_envelope(raw), ts)


def _line(n: int, message: str, **fields: Any) -> LogLine:
    ts = datetime.fromtimestamp(T0 + n, timezone.utc).isoformat()
    return LogLine(ts=ts, task_id="load-1", task_name="load", message=message, n=n, **fields)


def _batch(seq: int, *lines: LogLine, dropped: list[DroppedLines] | None = None) -> LogBatch:
    return LogBatch(run_id=RUN, org_id="o", project_id="p", source="host-1", seq=seq,
                    ts=lines[0].ts if lines else "2026-11-18T00:00:00+00:00", lines=list(lines),
                    dropped=dropped or [])  # fmt: skip


class _Engine(InMemoryConnector):
    """Sends the run's log batches, then its ENGINE_STOPPED, once the run's telemetry is
    subscribed to (`cascade logs -f` subscribes to its logs first); with ``forged_first``,
    a forger's ENGINE_STOPPED (as mallory) before anything. A subscription to every run's
    telemetry (a prefix looked up) hears a heartbeat of each of ``live`` (``None``: the run's
    only); with ``silent``, nothing at all is sent."""

    def __init__(
        self,
        broker: InMemoryBroker,
        batches: list[LogBatch],
        forged_first: bool = False,
        live: list[str] | None = None,
        silent: bool = False,
    ) -> None:
        super().__init__(broker, presence=False)
        self.batches = batches
        self.forged_first = forged_first
        self.live = [RUN] if live is None else live
        self.silent = silent

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, *, on_sync: SyncCallback | None = None
    ) -> Subscription:
        handle = await super().subscribe(topic_filter, callback, on_sync=on_sync)
        if self.silent or "/telemetry/" not in topic_filter:
            return handle
        if RUN not in topic_filter:  # every run's: a prefix looked up among the live runs
            for run_id in self.live:
                beat = Envelope(run_id=run_id, org_id="o", project_id="p", source="host-1",
                                body=Heartbeat())  # fmt: skip
                await self.publish(heartbeat_topic("o", "p", run_id), beat)
            return handle
        if self.forged_first:
            online = StatusMessage(status="online", source="host-1", session=1)
            await self.publish(status_topic("host-1"), online, retain=True)  # an engine's
            await self.broker.idle()
            stop = LifecycleEvent(event="ENGINE_STOPPED", status="Failed")
            forged = Envelope(run_id=RUN, org_id="o", project_id="p", source="mallory",
                              body=stop)  # fmt: skip
            await self.publish(events_topic("o", "p", RUN), forged)
            await self.broker.idle()
        for batch in self.batches:
            await self.publish(logs_topic("o", "p", RUN), batch)
        stop = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
        stopped = Envelope(run_id=RUN, org_id="o", project_id="p", source="host-1", body=stop)
        await self.publish(events_topic("o", "p", RUN), stopped)
        return handle


def _invoke(
    *args: str,
    batches: tuple[LogBatch, ...] | list[LogBatch] = (),
    forged_first: bool = False,
    live: list[str] | None = None,
    silent: bool = False,
    quiet_after: float = 60.0,
) -> Result:
    broker = InMemoryBroker()

    def factory(options: BrokerOptions) -> Connector:
        return _Engine(broker, list(batches), forged_first, live, silent)

    context = CliContext(connector_factory=factory, quiet_after=quiet_after)
    return CliRunner().invoke(app, list(args), obj=context)


def test_recorded_lines_are_printed_from_the_history(db: str, asked: list[dict[str, Any]]) -> None:
    result = _invoke("logs", RUN[:8], "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "INFO     load etl: kept 1",
        "WARNING  load etl: kept 2",
        "INFO     send etl: kept 3",
    ]
    assert all(CLOCK.match(line) for line in lines)
    assert asked[0] == {"run_id": RUN, "task": None, "level": 0, "since": None, "after": 0,
                        "limit": 1000}  # fmt: skip


def test_the_task_level_and_age_are_asked_of_the_history(
    db: str, asked: list[dict[str, Any]]
) -> None:
    result = _invoke("logs", RUN, "load*", "--db", db, "--level", "warn", "--since", "1h")
    assert result.exit_code == 0, result.output
    query = asked[0]
    assert (query["task"], query["level"]) == ("load*", 30)
    assert query["since"] is not None


def test_json_lines_carry_every_field_with_the_run_and_source(
    db: str, asked: list[dict[str, Any]]
) -> None:
    result = _invoke("logs", RUN, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.output.splitlines()[0])
    assert first["run_id"] == RUN
    assert first["source"] == "host-1"
    assert (first["task_name"], first["n"], first["level"], first["level_number"]) == (
        "load", 1, "INFO", 20
    )  # fmt: skip
    assert datetime.fromisoformat(first["ts"]).timestamp() == T0 + 1


def test_follow_prints_live_lines_until_the_run_stops() -> None:
    batches = [
        _batch(1, _line(1, "starting\nsecond line"),
               _line(2, "\x1b]0;pwned\x07 evil", level="ERROR")),
        _batch(2, _line(315, "after the drop", attempt=2),
               dropped=[DroppedLines(task_id="load-1", task_name="load", lines=312)]),
    ]  # fmt: skip
    result = _invoke("logs", RUN, "-f", batches=batches)
    assert result.exit_code == 0, result.output
    assert result.stderr == (  # once subscribed, before anything is printed
        "cascade: following the log lines of run 58a88765cea2 on localhost:1883 (Ctrl-C ends)\n"
    )
    lines = result.stdout.splitlines()
    assert lines[0].endswith("INFO     load starting")
    assert lines[1] == "    second line"  # a message's later lines indented under it
    assert lines[2].endswith("ERROR    load \\x1b]0;pwned\\x07 evil")  # inert
    assert lines[3] == "312 lines of load dropped (rate)"
    assert lines[4].endswith("INFO     load#2 after the drop")
    assert len(lines) == 5


def test_a_forged_end_from_another_source_heard_first_ends_nothing() -> None:
    """mallory's ENGINE_STOPPED before anything of the run: said, not taken; the lines come,
    and the end of the engine they came from ends the follow."""
    batches = [_batch(1, _line(1, "one")), _batch(2, _line(2, "two"))]
    result = _invoke("logs", RUN, "-f", batches=batches, forged_first=True)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "mallory" in lines[0]
    assert "still following" in lines[0]
    assert [line.rsplit(" ", 1)[-1] for line in lines[1:]] == ["one", "two"]


class _Forger(InMemoryConnector):
    """Once the run's telemetry is subscribed to: its engine's heartbeat, then mallory's log
    batch under the run's id, the engine's batches and end, and mallory's end."""

    def __init__(self, broker: InMemoryBroker, sourced: bool = False) -> None:
        super().__init__(broker, presence=False)
        self.sourced = sourced

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, *, on_sync: SyncCallback | None = None
    ) -> Subscription:
        handle = await super().subscribe(topic_filter, callback, on_sync=on_sync)
        if "/telemetry/" not in topic_filter:
            return handle
        beat = Envelope(run_id=RUN, org_id="o", project_id="p", source="host-1",
                        body=Heartbeat())  # fmt: skip
        await self.publish(heartbeat_topic("o", "p", RUN), beat)
        forged = structs.replace(_batch(1, _line(1, "forged")), source="mallory")
        where = "mallory" if self.sourced else None
        await self.publish(logs_topic("o", "p", RUN, source=where), forged)
        await self.publish(logs_topic("o", "p", RUN), _batch(1, _line(1, "one")))
        await self.publish(logs_topic("o", "p", RUN), _batch(2, _line(2, "two")))
        for source in ("host-1", "mallory"):
            stop = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
            stopped = Envelope(run_id=RUN, org_id="o", project_id="p", source=source, body=stop)
            await self.publish(events_topic("o", "p", RUN), stopped)
        return handle


@pytest.mark.parametrize("sourced", [False, True], ids=["plain", "sourced"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_follow_believes_lines_only_from_the_runs_engine(sourced: bool, as_json: bool) -> None:
    """mallory's batch under the run's id, heard before any line of its engine's: not shown,
    and said refused on stderr at the end (claiming mallory: foreign source), as `watch` says
    what it refused; the engine's lines are shown and its end ends the follow."""
    broker = InMemoryBroker()
    context = CliContext(connector_factory=lambda options: _Forger(broker, sourced))
    args = ["logs", RUN, "-f", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(app, args, obj=context)
    assert result.exit_code == 0, result.output
    assert "forged" not in result.stdout
    if as_json:
        assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == [
            "one", "two"
        ]  # fmt: skip
    else:
        assert [line.rsplit(" ", 1)[-1] for line in result.stdout.splitlines()] == ["one", "two"]
    assert (
        "cascade: refused 1 batch of log lines claiming mallory: 1 foreign source"
        in result.stderr.splitlines()
    )


def test_follow_says_lines_the_engine_dropped_once_when_its_note_comes_before_the_gap() -> None:
    """A window's drops ride in its first batch and the gap shows in a later one (a window
    longer than a batch): said dropped, not also missing; a gap nobody explained is missing."""
    said = DroppedLines(task_id="load-1", task_name="load", lines=10)
    batches = [
        _batch(1, _line(1, "one"), _line(2, "two"), dropped=[said]),
        _batch(2, _line(13, "after the drop")),  # 3 to 12: the ten said dropped
        _batch(3, _line(16, "after a loss")),  # 14 and 15: lost on the way
    ]
    result = _invoke("logs", RUN, "-f", batches=batches)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "line" in line and "of load" in line]
    assert notes == ["10 lines of load dropped (rate)", "2 lines of load missing"]


def test_follow_with_the_history_prints_the_recorded_lines_first_and_each_once(
    db: str, asked: list[dict[str, Any]]
) -> None:
    live = [_batch(1, _line(2, "kept 2 again"), _line(4, "live 4", logger="etl"))]
    result = _invoke("logs", RUN[:6], "load", "-f", "--db", db, "--timeout", "0.2", batches=live)
    assert result.exit_code == 0, result.output
    shown = [line.rsplit(": ", 1)[-1] for line in result.stdout.splitlines()]
    assert shown == ["kept 1", "kept 2", "1 line of load missing", "live 4"]


def test_follow_takes_the_short_id_of_a_live_run_and_ends_with_it() -> None:
    """The 12 digits every table shows name a live run without a history, as for `cancel`."""
    batches = [_batch(1, _line(1, "one"))]
    result = _invoke("logs", RUN[:12], "-f", "--timeout", "0.2", batches=batches)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("INFO     load one")


def test_follow_of_a_prefix_several_live_runs_have_names_them() -> None:
    other = RUN[:8] + "0" * 24
    result = _invoke("logs", RUN[:6], "-f", "--timeout", "0.2", live=[RUN, other])
    assert result.exit_code == 2
    assert "several runs' ids start with '58a887'" in result.output
    assert "58a88765cea2" in result.output
    assert "58a887650000" in result.output


def test_follow_of_a_prefix_no_run_has_is_one_line() -> None:
    result = _invoke("logs", "ffff", "-f", "--timeout", "0.2")
    assert result.exit_code == 1
    assert "no run's id starts with ffff among the runs heard within 0.2 s" in result.stderr


class _Quiet(InMemoryConnector):
    """Sends nothing until the quiet line is being said (it asks whether the connection is
    up): then the run's start and end."""

    def __init__(self, broker: InMemoryBroker) -> None:
        super().__init__(broker, presence=False)
        self.ending: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        if self.ending is None:
            self.ending = asyncio.get_running_loop().create_task(self._end())
        return super().is_connected

    async def _end(self) -> None:
        start = LifecycleEvent(event="ENGINE_STARTED")
        stop = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
        for seq, body in enumerate((start, stop), 1):
            envelope = Envelope(run_id=RUN, org_id="o", project_id="p", source="host-1",
                                seq=seq, body=body)  # fmt: skip
            await self.publish(events_topic("o", "p", RUN), envelope)


def test_follow_says_where_it_waits_when_it_hears_nothing() -> None:
    """Nothing heard for a while: one line on stderr says the broker and what is waited for;
    stdout (the lines, JSON here) stays clean."""
    broker = InMemoryBroker()
    context = CliContext(connector_factory=lambda options: _Quiet(broker), quiet_after=0.05)
    args = ["logs", RUN, "-f", "--json", "--host", "broker.example:1884"]
    result = CliRunner().invoke(app, args, obj=context)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[:2] == [
        "cascade: following the log lines of run 58a88765cea2 on broker.example:1884 (Ctrl-C ends)",
        "cascade: connected to broker.example:1884, nothing heard for 0.05 s: waiting for the "
        "log lines of run 58a88765cea2 and its end (Ctrl-C ends)",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--level", "loud"], "no level"), (["--since", "soon"], "not an age")],
)
def test_bad_options_are_usage_errors(db: str, args: list[str], says: str) -> None:
    result = _invoke("logs", RUN, "--db", db, *args)
    assert result.exit_code == 2
    assert says in result.output


def test_without_follow_a_missing_run_is_one_line(db: str) -> None:
    result = _invoke("logs", "ffff", "--db", db)
    assert result.exit_code == 1
    assert "no run's id starts with 'ffff'" in result.output


def test_follow_of_a_run_the_history_has_ended_prints_what_it_recorded(
    db: str, asked: list[dict[str, Any]]
) -> None:
    with History(db, mode="write") as history:
        stopped = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
        history.store([_event(stopped, T0 + 60)])
    result = _invoke("logs", RUN, "-f", "--db", db, batches=[_batch(1, _line(9, "live 9"))])
    assert result.exit_code == 0, result.output
    assert result.output.count("kept") == 3
    assert "live 9" not in result.output


def _with_task(db: str, task_id: str, name: str) -> None:
    with History(db, mode="write") as history:
        done = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name,
                "state": "COMPLETED"}  # fmt: skip
        history.store([_event(done, T0 + 5)])


@pytest.mark.parametrize("task", ["quiet", "quiet-3", "qu*"])
def test_a_task_that_logged_nothing_is_said_on_stderr(
    db: str, asked: list[dict[str, Any]], task: str
) -> None:
    _with_task(db, "quiet-3", "quiet")
    result = _invoke("logs", RUN, task, "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"cascade: no line logged by task {task!r} of run 58a88765cea2 in {db}\n"
    )


def test_a_task_the_run_does_not_have_is_an_error(db: str, asked: list[dict[str, Any]]) -> None:
    _with_task(db, "quiet-3", "quiet")
    result = _invoke("logs", RUN, "nosuch", "--db", db)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"the history at {db} has no task 'nosuch' of run 58a88765cea2" in result.stderr


def test_follow_joining_a_run_late_says_the_earlier_lines_it_does_not_show() -> None:
    """Its first line heard is a task's 5th (numbered across attempts), no history printed
    the first four: said once, before the line."""
    batches = [_batch(1, _line(5, "five")), _batch(2, _line(6, "six", attempt=2))]
    result = _invoke("logs", RUN, "-f", batches=batches)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "4 earlier lines of load not shown (logged before this listened, with no history that "
        "has them)"
    )
    assert [line.rsplit(" ", 1)[-1] for line in lines[1:]] == ["five", "six"]
