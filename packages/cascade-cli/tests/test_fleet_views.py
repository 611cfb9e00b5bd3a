"""`cascade status` and `cascade watch` from the engines' summaries: the fleet's totals, each
engine's figures, and watch's fleet mode, which stops reading the runs' events."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import msgspec
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.cli.rendering import render_fleet, render_status
from cascade.connector_kit import Subscription
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received
from cascade.interfaces import (
    Connector,
    Envelope,
    MessageCallback,
    StatusMessage,
    SyncCallback,
    TaskStateEvent,
    encode_payload,
    events_topic,
    status_topic,
)
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.reader import ReaderModel


def _summary(source: str, live: int, **fields: object) -> EngineSummary:
    now = datetime.now(timezone.utc).isoformat()
    fields.setdefault("more_live", live)
    return EngineSummary(source=source, ts=now, runs=RunTally(running=live), **fields)  # type: ignore[arg-type]


def _online(source: str) -> StatusMessage:
    return StatusMessage(status="online", source=source, session=1)


def test_status_shows_the_fleet_and_each_engines_summary(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """The fleet line adds the online engines' summaries up; each engine shows its own, one
    without says so, an offline one's live runs are stranded; --json has the same figures."""
    busy = _summary(
        "busy",
        3,
        tasks=TaskTally(running=4, blocked=2, pending=9, failed=1),
        events_per_s=12.5,
        dropped=7,
    )
    gone = _summary("gone", 2)
    for source, status, summary in [
        ("busy", _online("busy"), busy),
        ("gone", StatusMessage.announce("offline", "gone", 1), gone),
        ("old", _online("old"), None),
    ]:
        publish_retained(status_topic(source), encode_payload(status))
        if summary is not None:
            for at, said in summary_messages(summary):
                publish_retained(at, encode_payload(said))
    result = invoke("status")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for expected in [
        "fleet: 3 engines (2 online, 1 without summary)",
        "3 live runs",
        "tasks 4 running, 2 blocked, 9 pending",
        "12.5 ev/s",
        "7 dropped",
        "2 runs stranded on offline engines",
        "no summary",
        "2 runs stranded (offline)",
    ]:
        assert expected in text, expected
    data = json.loads(invoke("status", "--json").stdout)
    fleet = data["fleet"]
    assert (fleet["engines"], fleet["online"], fleet["without_summary"]) == (3, 2, 1)
    assert (fleet["live_runs"], fleet["stranded"], fleet["dropped"]) == (3, 2, 7)
    assert fleet["tasks"] == {
        "running": 4, "blocked": 2, "held": 0, "pending": 9, "completed": 0, "failed": 1,
        "skipped": 0, "cancelled": 0,
    }  # fmt: skip
    by_source = {engine["source"]: engine for engine in data["engines"]}
    assert by_source["old"]["summary"] is None
    assert by_source["busy"]["summary"]["runs"]["succeeded"] == 0  # defaults included
    shown = by_source["busy"]["summary"]
    assert shown["listed"] == len(busy.listed)  # how many: the runs are watch's and the page's
    assert msgspec.convert({**shown, "listed": []}, EngineSummary) == msgspec.structs.replace(
        busy, listed=[]
    )
    assert {"status", "session", "last_seen", "conflict"} <= by_source["busy"].keys()


def _listed(run_id: str, status: str = "Running", **fields: object) -> SummaryRun:
    now = datetime.now(timezone.utc).isoformat()
    return SummaryRun(
        run_id=run_id, org_id="acme", project_id="etl", status=status, started=now,  # type: ignore[arg-type]
        tasks=TaskTally(running=1), name="etl", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_status_counts_stranded_only_the_runs_nobody_carried_on(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """A server killed with two runs live, one of them carried on by another server (its
    summary says which run it carries on): one run is stranded, one carried on; the dead
    engine lists no live run; a claim from another project carries nothing on."""
    dead = _summary("srv-a", 2, listed=[_listed("run-1"), _listed("run-2")], more_live=0)
    carrier = _summary(
        "srv-b", 2, listed=[_listed("run-9", carried_on_from="run-1"), _listed("run-8")],
        more_live=0,
    )  # fmt: skip
    liar = _summary("srv-c", 1, more_live=0, listed=[
        msgspec.structs.replace(_listed("run-7", carried_on_from="run-2"), project_id="other")
    ])  # fmt: skip
    state = ReaderModel()
    for source, status, summary in [
        ("srv-a", StatusMessage(status="offline", source="srv-a", session=1), dead),
        ("srv-b", _online("srv-b"), carrier),
        ("srv-c", _online("srv-c"), liar),
    ]:
        publish_retained(status_topic(source), encode_payload(status))
        state.apply(received(status_topic(source), status, retain=True))
        for at, said in summary_messages(summary):
            publish_retained(at, encode_payload(said))
            state.apply(received(at, said, retain=True))
    console = Console(record=True, width=250)
    console.print(render_status(state))
    text = console.export_text()
    for expected in [
        "1 run stranded on offline engines",
        "1 run of offline engines carried on elsewhere",
        "1 run stranded (offline), 1 carried on elsewhere",
    ]:
        assert expected in text, expected
    dead_row = next(line for line in text.splitlines() if "srv-a" in line)
    assert "live" not in dead_row
    fleet = json.loads(invoke("status", "--json").stdout)["fleet"]
    assert (fleet["stranded"], fleet["carried"], fleet["live_runs"]) == (1, 1, 3)


def test_status_lists_the_engines_that_need_a_look_first_when_there_are_many() -> None:
    """Beyond 200 engines the table lists 200: a stranded one and the busiest first."""
    state = ReaderModel()
    for index in range(250):
        source = f"engine-{index:03d}"
        state.apply(received(status_topic(source), _online(source), retain=True))
        live = 40 if index == 7 else 1
        for at, said in summary_messages(_summary(source, live)):
            state.apply(received(at, said, retain=True))
    state.apply(received(status_topic("zz-gone"), StatusMessage.announce("offline", "zz-gone", 1)))
    for at, said in summary_messages(_summary("zz-gone", 5)):
        state.apply(received(at, said, retain=True))
    console = Console(record=True, width=200)
    console.print(render_status(state))
    lines = console.export_text().splitlines()
    rows = [line for line in lines if "engine-" in line or "zz-gone" in line]
    assert len(rows) == 200
    assert "zz-gone" in rows[0]
    assert "engine-007" in rows[1]
    assert any("51 more engines not listed" in line for line in lines)


def _event(run_id: str, task: str) -> Envelope:
    body = TaskStateEvent(task_id=task, task_name=task, state="RUNNING")
    return Envelope(run_id=run_id, org_id="o", project_id="p", source="busy", body=body)


class _Recording(InMemoryConnector):
    """Records the filters subscribed to; publishes an event of run r1 on every subscription
    (had the telemetry been subscribed to, it would reach the view)."""

    filters: list[str]

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, *, on_sync: SyncCallback | None = None
    ) -> Subscription:
        self.filters.append(topic_filter)
        handle = await super().subscribe(topic_filter, callback, on_sync=on_sync)
        await self.publish(events_topic("o", "p", "r1"), _event("r1", topic_filter))
        return handle


def test_watch_with_fleet_threshold_0_never_subscribes_to_telemetry(
    broker: InMemoryBroker, publish_retained: Callable[[str, bytes], None]
) -> None:
    """--fleet-threshold 0: fleet mode from the start; --json says so in a line of its own."""
    publish_retained(status_topic("busy"), encode_payload(_online("busy")))
    for at, said in summary_messages(_summary("busy", 1)):
        publish_retained(at, encode_payload(said))
    filters: list[str] = []

    def factory(options: BrokerOptions) -> Connector:
        connector = _Recording(broker, presence=False)
        connector.filters = filters
        return connector

    context = CliContext(connector_factory=factory)
    result = CliRunner().invoke(
        app, ["watch", "--json", "--fleet-threshold", "0", "--duration", "0"], obj=context
    )
    assert result.exit_code == 0, result.output
    assert filters
    assert not any("/telemetry/" in f for f in filters)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"mode": "fleet", "live_runs": 1, "engines": 1, "threshold": 0} in lines
    assert not any("/telemetry/" in line.get("topic", "") for line in lines)


def test_watch_on_a_terminal_shows_the_fleet_view_above_the_threshold(
    broker: InMemoryBroker, publish_retained: Callable[[str, bytes], None]
) -> None:
    """Summaries counting the threshold: the header says fleet mode and why, the engines with
    the most live runs come first; with --project the same watch reads the events."""
    for source, live in [("calm", 1), ("busy", 4)]:
        publish_retained(status_topic(source), encode_payload(_online(source)))
        listed = [
            SummaryRun(
                run_id="r0", org_id="o", project_id="p", status="Running",
                started=datetime.now(timezone.utc).isoformat(), tasks=TaskTally(running=1),
            )
        ]  # fmt: skip
        for at, said in summary_messages(_summary(source, live, listed=listed)):
            publish_retained(at, encode_payload(said))

    def watch(*args: str) -> str:
        console = Console(force_terminal=True, width=160, height=40, record=True)

        def factory(options: BrokerOptions) -> Connector:
            return InMemoryConnector(broker, presence=False)

        context = CliContext(connector_factory=factory, console=console)
        result = CliRunner().invoke(app, ["watch", "--duration", "0", *args], obj=context)
        assert result.exit_code == 0, result.output
        return console.export_text()

    text = watch("--fleet-threshold", "5")
    assert "fleet mode: from 2 engines' summaries, above --fleet-threshold 5 live runs" in text
    assert "fleet: 2 engines (2 online)" in text
    assert "5 live runs" in text
    assert text.index("busy") < text.index("calm")
    assert "Runs" not in text
    text = watch("--fleet-threshold", "6")
    assert "events mode: 5 live runs in the summaries" in text
    assert "Runs" in text
    text = watch("--fleet-threshold", "5", "--project", "p")
    assert "fleet mode" not in text
    assert "Runs" in text


FLEET = 10_000


def _listing(source: str, n: int) -> EngineSummary:
    """Engine ``n``'s summary, listing its live run and four ended ones, as engines do."""
    now = datetime.now(timezone.utc).isoformat()
    live = n % 100 == 42  # a hundred of them busy with one live run
    runs = [
        SummaryRun(
            run_id=f"{source}-r{k}",
            org_id="o",
            project_id="p",
            status="Running" if live and k == 0 else "Succeeded",
            started=now,
            tasks=TaskTally(completed=20),
            planned=20,
            last_seq=42,
        )
        for k in range(5)
    ]
    return EngineSummary(source=source, ts=now, runs=RunTally(running=int(live), succeeded=4),
                         tasks=TaskTally(completed=100), listed=runs)  # fmt: skip


def test_status_at_fleet_size_is_bounded_and_lists_what_needs_a_look(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """10,000 engines whose summaries list their runs: `status --json` stays under 1 MB and
    lists the 1,000 that need a look first (the busy ones among them), still by source, and
    says how many there are; --every-engine lists them all, --engine some; the tables put
    the busy engines first."""
    for n in range(FLEET):
        source = f"fleet-{n:05}"
        publish_retained(status_topic(source), encode_payload(_online(source)))
        for at, said in summary_messages(_listing(source, n)):
            publish_retained(at, encode_payload(said))
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    assert len(result.output.encode()) <= 1_000_000, len(result.output)
    data = json.loads(result.output)
    assert (data["fleet"]["engines"], data["fleet"]["live_runs"]) == (FLEET, 100)
    assert (data["engines_matching"], data["engines_listed"]) == (FLEET, 1_000)
    sources = [e["source"] for e in data["engines"]]
    assert sources == sorted(sources)
    busy = {f"fleet-{n:05}" for n in range(42, FLEET, 100)}
    assert busy <= set(sources)

    every = json.loads(invoke("status", "--json", "--every-engine").output)
    assert every["engines_listed"] == len(every["engines"]) == FLEET
    some = json.loads(invoke("status", "--json", "--engine", "fleet-0004*").output)
    assert [e["source"] for e in some["engines"]] == [f"fleet-{n:05}" for n in range(40, 50)]
    assert some["engines_matching"] == 10

    text = invoke("status").output
    rows = [line for line in text.splitlines() if "fleet-" in line]
    assert len(rows) == 200
    assert "fleet-00042" in rows[0]  # the busy first, then by source
    assert "9,800 more engines not listed" in " ".join(text.split())


def _text(renderable: object) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_the_fleet_view_counts_an_engine_without_summary_by_its_runs_events() -> None:
    """An engine that sends no summary, two of whose runs its events showed starting: the
    fleet line counts them live, and its row says so, ranked with the busy engines; once it
    goes offline they are counted no more."""
    state = ReaderModel()
    state.apply(received(status_topic("quiet"), _online("quiet"), retain=True))
    state.apply(received(status_topic("busy"), _online("busy"), retain=True))
    for at, said in summary_messages(_summary("busy", 1)):
        state.apply(received(at, said, retain=True))
    for run_id in ("r1", "r2"):
        body = TaskStateEvent(task_id="t", task_name="t", state="RUNNING")
        envelope = Envelope(ts=datetime.now(timezone.utc).isoformat(), run_id=run_id,
                            org_id="o", project_id="p", source="quiet", body=body)  # fmt: skip
        state.apply(received(events_topic("o", "p", run_id), envelope))
    assert (state.fleet().live_runs, state.fleet().live_without_summary) == (3, 2)
    text = " ".join(_text(render_fleet(state, threshold=0, rows=10)).split())
    assert "3 live runs" in text
    assert "2 seen, no summary" in text
    assert text.index("quiet") < text.index("busy")  # the most live runs first
    offline = StatusMessage.announce("offline", "quiet", 1)
    state.apply(received(status_topic("quiet"), offline, retain=True))
    assert state.fleet().live_runs == 1
