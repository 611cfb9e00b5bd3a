"""The dashboard's engines: those that ended cleanly a while ago fold into a count the page
shows, and are listed on asking (engine_status=ended); a lost engine stays listed. An engine
whose telemetry does not arrive is named in the header."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

from cascade.connector_kit.testing import received
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import (
    Envelope,
    Message,
    StatusMessage,
    TaskStateEvent,
    events_topic,
    status_topic,
)
from cascade.interfaces.summaries import EngineSummary, RunTally, SummaryRun, TaskTally
from cascade.reader import SILENT_AFTER


def _status(hub: DashboardHub, source: str, state: str, reason: str | None, ago: float) -> None:
    ts = (datetime.now(timezone.utc) - timedelta(seconds=ago)).isoformat()
    said = StatusMessage(status=state, source=source, session=1, ts=ts, reason=reason)  # type: ignore[arg-type]
    hub.model.apply(received(status_topic(source), said, retain=True))


async def test_clean_ends_fold_into_a_count_listed_on_asking(hub: DashboardHub) -> None:
    for n in range(4):
        _status(hub, f"script-{n}", "offline", "shutdown", ago=300)
    _status(hub, "just-ended", "offline", "shutdown", ago=1)
    _status(hub, "lost", "offline", None, ago=300)
    _status(hub, "live", "online", None, ago=1)
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = (await http.get("/api/state", params={"engines_limit": "25"})).json()
        assert [e["source"] for e in page["engines"]] == ["just-ended", "live", "lost"]
        assert page["ended_cleanly"] == 4
        assert (page["engines_matching"], page["engines_total"]) == (3, 7)
        ended = (
            await http.get("/api/state", params={"engines_limit": "25", "engine_status": "ended"})
        ).json()
        assert [e["source"] for e in ended["engines"]] == [f"script-{n}" for n in range(4)]
        legacy = (await http.get("/api/state")).json()  # without paging: every engine
        assert len(legacy["engines"]) == 7


def _summary(last_seq: int) -> Message:
    run = SummaryRun(
        run_id="r-1", org_id="acme", project_id="etl", status="Running",
        started=datetime.now(timezone.utc).isoformat(), tasks=TaskTally(running=1),
        last_seq=last_seq,
    )  # fmt: skip
    said = EngineSummary(source="engine-1", session=1, runs=RunTally(running=1), listed=[run])
    return received("cascade/summary/acme/etl/engine-1", said)  # its runs' topic


async def test_an_engine_whose_events_never_arrive_is_named_in_the_header(
    hub: DashboardHub,
) -> None:
    now = [datetime.now(timezone.utc).timestamp()]
    hub.model.state.clock = lambda: now[0]
    assert hub.model.state.telemetry_filters  # the hub reads every run's telemetry
    _status(hub, "engine-1", "online", None, ago=0)
    hub.model.apply(_summary(0))
    hub.model.apply(_summary(7))
    assert hub.model.header()["silent"] == []
    version = hub.model.version
    now[0] += SILENT_AFTER
    await hub.wait_change(version, 0)  # a page's stream looks: time alone changed it
    assert hub.model.version > version
    (said,) = hub.model.header()["silent"]
    assert said["source"] == "engine-1"
    assert said["line"].startswith("no telemetry from engine-1 reached this view")


def _summary_of(source: str, last_seq: int) -> Message:
    run = SummaryRun(
        run_id=f"r-{source}", org_id="acme", project_id="etl", status="Running",
        started=datetime.now(timezone.utc).isoformat(), tasks=TaskTally(running=1),
        last_seq=last_seq,
    )  # fmt: skip
    said = EngineSummary(source=source, session=1, runs=RunTally(running=1), listed=[run])
    return received(f"cascade/summary/acme/etl/{source}", said)


async def test_the_silent_engines_a_header_names_are_bounded_and_all_listed_on_asking(
    hub: DashboardHub,
) -> None:
    """A fleet whose telemetry all goes missing: the header names the first few and counts
    the rest (a page's first answer is bounded by what it shows, not by the fleet), and
    ``/api/problems/silent`` (what the Problems place reads) pages through every one."""
    now = [datetime.now(timezone.utc).timestamp()]
    hub.model.state.clock = lambda: now[0]
    sources = [f"engine-{n:03}" for n in range(300)]
    for source in sources:
        _status(hub, source, "online", None, ago=0)
        hub.model.apply(_summary_of(source, 0))
        hub.model.apply(_summary_of(source, 7))
    now[0] += SILENT_AFTER
    header = hub.model.header()
    assert header["silent_total"] == 300
    assert [said["source"] for said in header["silent"]] == sources[:10]
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    listed: list[dict[str, str]] = []
    after: str | None = None
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        for _ in range(5):  # 300 by 100: a cursor that never moves on fails, not hangs
            params = {"limit": "100", **({"after": after} if after else {})}
            page = (await http.get("/api/problems/silent", params=params)).json()
            assert page["total"] == 300
            listed += page["items"]
            after = page["next_after"]
            if after is None:
                break
    assert [item["source"] for item in listed] == sources
    assert listed[0]["line"] == header["silent"][0]["line"]


async def test_an_engine_back_after_a_clean_end_is_listed_again(hub: DashboardHub) -> None:
    """The folded engines are looked for among those that said offline: one that comes back
    online is listed again and no longer counted, one that ends cleanly later is."""
    _status(hub, "script", "offline", "shutdown", ago=300)
    _status(hub, "worker", "online", None, ago=300)
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    params = {"engines_limit": "25"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = (await http.get("/api/state", params=params)).json()
        assert [e["source"] for e in page["engines"]] == ["worker"]
        assert (page["ended_cleanly"], page["engines_matching"]) == (1, 1)
        _status(hub, "script", "online", None, ago=0)
        _status(hub, "worker", "offline", "shutdown", ago=200)
        page = (await http.get("/api/state", params=params)).json()
        assert [e["source"] for e in page["engines"]] == ["script"]
        assert (page["ended_cleanly"], page["engines_matching"]) == (1, 1)


async def test_an_engine_heard_again_leaves_the_silent_ones(hub: DashboardHub) -> None:
    now = [datetime.now(timezone.utc).timestamp()]
    hub.model.state.clock = lambda: now[0]
    _status(hub, "engine-1", "online", None, ago=0)
    hub.model.apply(_summary(0))
    hub.model.apply(_summary(7))
    now[0] += SILENT_AFTER
    assert [said["source"] for said in hub.model.header()["silent"]] == ["engine-1"]
    event = Envelope(
        ts=datetime.now(timezone.utc).isoformat(), run_id="r-1", org_id="acme",
        project_id="etl", source="engine-1", seq=8,
        body=TaskStateEvent(task_id="t", task_name="t", state="RUNNING"),
    )  # fmt: skip
    hub.model.apply(received(events_topic("acme", "etl", "r-1"), event))  # its events arrive
    assert hub.model.header()["silent"] == []
