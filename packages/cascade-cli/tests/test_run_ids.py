"""One run id everywhere: every view shows the same short form, and every command that takes a
run id takes a prefix only one known run has (live or recorded), naming the runs when several
have it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import platformdirs
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.run_ids import SHORT_ID
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Received
from cascade.interfaces import (
    Connector,
    Envelope,
    Heartbeat,
    decode_envelope,
    encode_payload,
    heartbeat_topic,
)
from cascade.interfaces.summaries import (
    EngineSummary,
    SummaryRun,
    TaskTally,
    summary_messages,
)

PublishRetained = Callable[[str, bytes], None]  # the conftest's fixture

LIVE = "5eed" + "a" * 28
ENDED = "5eed" + "b" * 28
OTHER = "c0ffee" + "0" * 26
T0 = 1_795_000_000.0
TOKEN = "s3cret"


def _default_history() -> Path:
    """Where `cascade record` writes by default (this test's own: see conftest)."""
    return platformdirs.user_data_path("cascade", appauthor=False) / "history.sqlite3"


def _record(path: Path | str, *run_ids: str) -> None:
    """A history in which each run started and, with one task, succeeded."""
    received = []
    for index, run_id in enumerate(run_ids):
        ts = T0 + index
        for body in [
            {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1},
            {"type": "TaskStateEvent", "task_id": "a-1", "task_name": "a", "state": "BLOCKED",
             "held_by": [{"type": "pause", "scope": "global", "issued_by": "alice"}]},
            {"type": "TaskStateEvent", "task_id": "a-1", "task_name": "a", "state": "COMPLETED"},
            {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"},
        ]:  # fmt: skip
            ts += 1
            raw = {
                "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
                "run_id": run_id,
                "org_id": "o",
                "project_id": "p",
                "source": "host-1",
                "body": body,
            }
            topic = f"cascade/telemetry/o/p/{run_id}/events"
            received.append(Received(topic, decode_envelope(raw), ts))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with History(path, mode="write") as history:
        history.store(received)


def _live(publish_retained: PublishRetained, *run_ids: str, listed: bool = True) -> None:
    """Runs heard on the broker: their heartbeats, kept for whoever subscribes next, and
    (``listed``) their engine's summary listing them, as an engine keeps it."""
    for run_id in run_ids:
        beat = Envelope(
            run_id=run_id, org_id="o", project_id="p", source="host-2", body=Heartbeat()
        )
        publish_retained(heartbeat_topic("o", "p", run_id), encode_payload(beat))
    if listed:
        runs = [
            SummaryRun(run_id=run_id, org_id="o", project_id="p", status="Running",
                       started="2026-11-27T10:00:00+00:00", tasks=TaskTally(running=1))
            for run_id in run_ids
        ]  # fmt: skip
        summary = EngineSummary(source="host-2", listed=runs)
        for at, said in summary_messages(summary):
            publish_retained(at, encode_payload(said))


def _one_line(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    (line,) = result.output.strip().splitlines()
    return line


@pytest.mark.parametrize("value", ["", "xyz", "g" * 32, "0" * 33, "5eed-a"])
@pytest.mark.parametrize("command", [["cancel"], ["why"], ["why", "--history"], ["run"]])
def test_a_run_id_that_is_not_hex_is_one_line_exit_2(
    invoke: Callable[..., Result], command: list[str], value: str
) -> None:
    """Empty, not hex or too long: a usage error before anything is read or sent."""
    line = _one_line(invoke(command[0], value, *command[1:]), 2)
    assert "a run id is hex digits: all 32, or a prefix only one run has" in line


def test_cancel_takes_the_prefix_of_a_live_run(
    invoke: Callable[..., Result], publish_retained: PublishRetained
) -> None:
    """The prefix a table shows names the run heard live: the cancel goes to its whole id."""
    _live(publish_retained, LIVE, OTHER)
    line = _one_line(invoke("cancel", LIVE[:SHORT_ID], "--timeout", "0.3"), 1)
    assert line.startswith(f"cascade: no engine answered for run {LIVE} within 0.3 s")
    assert not _default_history().exists()  # looked for, not made


def test_a_prefix_the_summaries_list_is_resolved_without_listening(
    invoke: Callable[..., Result], publish_retained: PublishRetained
) -> None:
    """The engines' retained summaries name the run: no window is listened in, so the
    answer comes as fast as for the whole id (the timeout, 30 s, is not waited)."""
    _live(publish_retained, LIVE, OTHER)
    started = time.monotonic()
    result = invoke("why", LIVE[:8], "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"run {LIVE[:12]} (host-2): Running\n  nothing blocked\n"
    assert "listening" not in result.stderr
    assert time.monotonic() - started < 5  # LIVE_WAIT: what listening would have cost


def test_a_prefix_no_summary_lists_is_listened_for_saying_so(
    invoke: Callable[..., Result], publish_retained: PublishRetained
) -> None:
    """A live run no summary lists (its engine has not published one yet): the prefix is
    listened for, and stderr says why the command waits."""
    _live(publish_retained, LIVE, listed=False)
    result = invoke("cancel", LIVE[:SHORT_ID], "--timeout", "0.3")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == (
        f"cascade: listening 0.3 s for live runs whose ids start with {LIVE[:SHORT_ID]} (the "
        "engines' summaries and the history do not settle it)"
    )
    assert f"no engine answered for run {LIVE} within 0.3 s" in result.stderr


def test_cancel_names_the_runs_a_prefix_is_ambiguous_among(
    invoke: Callable[..., Result], publish_retained: PublishRetained
) -> None:
    """A live run and one in the default history share the prefix: exit 2 naming both."""
    _record(_default_history(), ENDED)
    _live(publish_retained, LIVE)
    line = _one_line(invoke("cancel", "5eed", "--timeout", "0.3"), 2)
    assert f"several runs' ids start with '5eed': {LIVE[:12]}, {ENDED[:12]}; give more" in line


def test_cancel_of_a_prefix_no_run_has_says_where_the_ids_are(
    invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """Nothing live and nothing recorded: exit 1, one line naming the history searched and
    where whole ids are shown."""
    db = tmp_path / "h.sqlite3"
    _record(db, ENDED)
    result = invoke("cancel", "0abc", "--db", str(db), "--timeout", "0.2")
    assert result.exit_code == 1, result.output
    listening, line = result.output.strip().splitlines()
    assert listening.startswith("cascade: listening 0.2 s for live runs whose ids start with 0abc")
    assert line == (
        f"cascade: no run's id starts with 0abc in the history at {db} or among the runs "
        "heard within 0.2 s; `cascade runs`, `cascade watch --json` and `cascade run PREFIX` "
        "show run ids"
    )


def test_a_whole_run_ids_engine_is_looked_up_in_the_history(invoke: Callable[..., Result]) -> None:
    """32 digits are the id, but the engine it belongs to is the history's (when one is named
    or the default exists): one that cannot be read ends the cancel, one line, exit 1, rather
    than take an answer on weaker grounds than the user asked for."""
    result = invoke("cancel", LIVE, "--db", "postgresql://u@127.0.0.1:1/h", "--timeout", "0.2")
    assert _one_line(result, 1).startswith(
        f"cascade: cannot look up which engine runs {LIVE}: cannot open postgresql+psycopg://"
    )
    result = invoke("cancel", LIVE, "--timeout", "0.2")  # no default history: nothing opened
    assert _one_line(result, 1).startswith(f"cascade: nothing was sent to run {LIVE}: its org")
    assert not _default_history().exists()


def test_a_history_that_cannot_be_read_ends_a_prefix_lookup(
    invoke: Callable[..., Result],
) -> None:
    """A database named with --db that is not there: exit 1, one line."""
    result = invoke("cancel", "5eed", "--db", "postgresql://u:pw@127.0.0.1:1/h")
    line = _one_line(result, 1)
    assert line.startswith(
        "cascade: cannot look run id 5eed up: cannot open postgresql+psycopg://u:***@"
    )


def test_why_of_an_ended_run_answers_from_the_default_history(
    invoke: Callable[..., Result],
) -> None:
    """Nothing heard live: the history `cascade record` keeps by default answers, and says so
    on stderr; the answer on stdout is that of --history."""
    _record(_default_history(), ENDED)
    for given in (ENDED, ENDED[:SHORT_ID]):
        result = invoke("why", given, "--timeout", "0.2")
        assert result.exit_code == 0, result.output
        listening = (  # no engine keeps a summary here: a prefix is listened for too
            ""
            if given == ENDED
            else f"cascade: listening 0.2 s for live runs whose ids start with {given} (the "
            "engines' summaries and the history do not settle it)\n"
        )
        assert result.stderr == listening + (
            f"cascade: nothing heard of run {ENDED[:12]} within 0.2 s: answering from the "
            f"history at {_default_history()}\n"
        )
        assert result.stdout == invoke("why", ENDED, "--history").stdout
        assert result.stdout.startswith(f"run {ENDED[:12]} (host-1): Succeeded\n  a (a-1) was held")


def test_why_of_a_run_not_heard_without_a_history_points_at_it(
    invoke: Callable[..., Result],
) -> None:
    """No history: one line saying --history answers for a run that has ended, exit 1."""
    line = _one_line(invoke("why", ENDED, "--timeout", "0.2"), 1)
    assert line.startswith(f"cascade: nothing heard of run {ENDED} within 0.2 s: if it has ")
    assert "--history answers from the history `cascade record` keeps" in line


def test_why_of_a_run_neither_heard_nor_recorded_is_unknown(
    invoke: Callable[..., Result],
) -> None:
    """A history without the run: one line, exit 1."""
    _record(_default_history(), ENDED)
    result = invoke("why", OTHER[:8], "--timeout", "0.2")
    assert result.exit_code == 1, result.output
    listening, line = result.output.strip().splitlines()
    assert listening.startswith(
        f"cascade: listening 0.2 s for live runs whose ids start with {OTHER[:8]}"
    )
    assert line == (
        f"cascade: run {OTHER[:8]} is unknown: nothing heard of it within 0.2 s, and the "
        f"history at {_default_history()} has no run whose id starts with it"
    )


def test_why_answers_for_the_live_run_a_prefix_names(
    invoke: Callable[..., Result], publish_retained: PublishRetained
) -> None:
    """A prefix of a live run: its heartbeat's answer, under the short id."""
    _live(publish_retained, LIVE, OTHER)
    result = invoke("why", LIVE[:6], "--timeout", "0.3")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"run {LIVE[:12]} (host-2): Running\n  nothing blocked\n"
    answer = json.loads(invoke("why", LIVE[:6], "--timeout", "0.3", "--json").stdout)
    assert answer["runs"][0]["run_id"] == LIVE


def test_a_prefix_many_recorded_runs_have_names_a_handful(tmp_path: Path) -> None:
    """`run` and `why --history`: the first five and how many more; exit 2, one line."""
    db = str(tmp_path / "h.sqlite3")
    ids = [f"ab{n:02d}" + "0" * 28 for n in range(8)]
    _record(db, *ids)
    shown = ", ".join(run_id[:12] for run_id in ids[:5])
    for args in (["run", "ab"], ["why", "ab", "--history"]):
        result = CliRunner().invoke(app, [*args, "--db", db])
        line = _one_line(result, 2)
        assert f"several runs' ids start with 'ab': {shown} and 3 more; give more of it" in line
    assert _one_line(CliRunner().invoke(app, ["run", "ab0", "--db", db]), 2)
    found = CliRunner().invoke(app, ["run", "ab07", "--db", db, "--json"])
    assert json.loads(found.stdout)["run_id"] == ids[7]


def test_every_table_shows_the_same_short_id(
    publish_retained: PublishRetained, broker: InMemoryBroker, tmp_path: Path
) -> None:
    """`watch`, `runs`, `why` and the dashboard's pages show SHORT_ID digits, no more."""
    short = re.compile(r"\b5eed[ab]+\b")
    _live(publish_retained, LIVE)
    console = Console(force_terminal=True, width=200, record=True)

    def factory(options: BrokerOptions) -> Connector:
        return InMemoryConnector(broker, presence=False)

    context = CliContext(connector_factory=factory, console=console)
    assert CliRunner().invoke(app, ["watch", "--count", "1"], obj=context).exit_code == 0
    db = str(tmp_path / "h.sqlite3")
    _record(db, ENDED)
    context = CliContext(console=Console(width=200, record=True))
    assert CliRunner().invoke(app, ["runs", "--db", db], obj=context).exit_code == 0
    assert context.console is not None
    shown = short.findall(console.export_text()) + short.findall(context.console.export_text())
    assert set(shown) == {LIVE[:SHORT_ID], ENDED[:SHORT_ID]}  # and no longer nor shorter form
    static = files("cascade.dashboard") / "static"
    assert f"const SHORT_ID = {SHORT_ID};" in (static / "format.js").read_text()
    dom = (static / "dom.js").read_text()
    assert 'const button = el("button", shortId(runId), className);' in dom  # runButton
    for page in ("render.js", "history.js"):
        assert "runButton(run.run_id, " in (static / page).read_text()


async def test_the_dashboards_cancel_and_history_take_a_prefix(
    broker: InMemoryBroker, hub: DashboardHub, tmp_path: Path
) -> None:
    """POST /api/runs/PREFIX/cancel resolves among the runs the dashboard heard and its
    history's: 400 naming them when several have it, 404 when none; /api/history/run too."""
    from cascade.dashboard import Tokens

    db = str(tmp_path / "h.sqlite3")
    _record(db, ENDED, "ab" + "0" * 30, "ab" + "1" * 30)
    hub.timeout = 0.2
    async with InMemoryConnector(broker, presence=False) as engine:
        beat = Envelope(run_id=LIVE, org_id="o", project_id="p", source="h", body=Heartbeat())
        await engine.publish(heartbeat_topic("o", "p", LIVE), encode_payload(beat), qos=1)
    while LIVE not in hub.model.state.runs:
        await hub.wait_change(hub.model.version, 5)
    with History(db) as history:
        app_ = create_app(
            hub, DashboardSettings(token=Tokens.parse([f"bob={TOKEN}"], "dash"), history=history)
        )
        transport = httpx.ASGITransport(app=app_)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:

            async def cancel(run_id: str) -> tuple[int, Any]:
                answer = await http.post(f"/api/runs/{run_id}/cancel", headers=auth)
                return answer.status_code, answer.json()["error"]

            assert await cancel(LIVE[:8]) == (
                504,
                f"no engine answered for run {LIVE} within 0.2 s",
            )
            status, said = await cancel("5eed")
            assert (status, f"{LIVE[:12]}, {ENDED[:12]}" in said) == (400, True)
            status, said = await cancel("0abc")
            assert (status, said.startswith("no run's id starts with 0abc")) == (404, True)
            assert (await cancel("zz"))[0] == 400
            ambiguous = await http.get("/api/history/run", params={"id": "ab"})
            assert ambiguous.status_code == 400
            assert "several runs' ids start with 'ab'" in ambiguous.json()["error"]
            found = await http.get("/api/history/run", params={"id": ENDED[:SHORT_ID]})
            assert found.json()["run"]["run_id"] == ENDED
