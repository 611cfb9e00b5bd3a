"""`/api/state` a page at a time: limit, after, and the filters project, status, engine and name."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import received, telemetry
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import LifecycleEvent, Message, StatusMessage, TaskStateEvent, status_topic

NOW = datetime.now(timezone.utc)
# What /api/state answered before it could page: a script reading these keeps working.
LEGACY_KEYS = {"version", "now", "engines", "runs", "runs_total", "constraints", "rejected",
               "oversized", "missed", "refused", "connection", "controls", "run"}  # fmt: skip
# fleet mode's, the held tasks, the per-source lists' totals (the lists name the worst few),
# silent engines, engines that ended cleanly: additive
ADDED_KEYS = {
    "mode", "fleet", "engines_total", "held", "missed_total", "refused_total", "conflicts",
    "conflicts_total", "silent", "silent_total", "ended_cleanly", "recorders",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _ticking(hub: DashboardHub) -> None:
    """The dashboard's clock moves a millisecond at each look: runs fed one after another are
    heard of one after another."""
    now = [time.time()]

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    hub.model.clock = clock


def started(run_id: str, project: str, source: str) -> Message:
    body = TaskStateEvent(task_id="t-1", task_name="t", state="RUNNING")
    return telemetry(body, run_id=run_id, project_id=project, source=source, ts=NOW)


def ended(run_id: str, project: str, source: str, status: str) -> Message:
    body = LifecycleEvent(event="ENGINE_STOPPED", status=status)  # type: ignore[arg-type]
    return telemetry(body, run_id=run_id, project_id=project, source=source, ts=NOW)


def status(source: str, state: str) -> Message:
    said = StatusMessage(status=state, source=source, session=1, ts=NOW.isoformat())  # type: ignore[arg-type]
    return received(status_topic(source), said, retain=True)


def fleet(hub: DashboardHub) -> dict[str, dict[str, str]]:
    """23 runs of 3 projects on 2 engines, heard of one after another; every third ended,
    alternately Succeeded and Failed. Returns each run's project, engine and status."""
    runs = {}
    hub.model.apply(status("host-1", "online"))
    hub.model.apply(status("host-2", "offline"))
    for n in range(23):
        run_id, project, source = f"run-{n:02}", f"p{n % 3}", f"host-{1 + n % 2}"
        hub.model.apply(started(run_id, project, source))
        state = "Running"
        if n % 3 == 0:
            state = "Succeeded" if n % 2 else "Failed"
            hub.model.apply(ended(run_id, project, source, state))
        runs[run_id] = {"project": project, "source": source, "status": state}
    return runs


def client(hub: DashboardHub) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def walk(http: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """Every page of ``params``, following runs_next; each page's answer."""
    pages: list[dict[str, Any]] = []
    after = None
    while len(pages) < 50:  # a cursor that never moves on must fail the test, not hang it
        asked = {**params, **({"after": after} if after else {})}
        answer = await http.get("/api/state", params=asked)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        after = pages[-1]["runs_next"]
        if after is None:
            return pages
    raise AssertionError("the pages never end")


async def test_pages_list_every_run_once_running_first_then_newest(hub: DashboardHub) -> None:
    """limit=5 after the cursor of each page: 5 pages, each run once, in a stable order."""
    runs = fleet(hub)
    async with client(hub) as http:
        pages = await walk(http, limit="5")
    listed = [run["run_id"] for page in pages for run in page["runs"]]
    assert [len(page["runs"]) for page in pages] == [5, 5, 5, 5, 3]
    running = [r for r in sorted(runs, reverse=True) if runs[r]["status"] == "Running"]
    ended_ = [r for r in sorted(runs, reverse=True) if runs[r]["status"] != "Running"]
    assert listed == running + ended_
    assert {(page["runs_total"], page["runs_matching"]) for page in pages} == {(23, 23)}


async def test_filters_narrow_the_runs_and_count_what_matches(hub: DashboardHub) -> None:
    """project, status (any case) and engine, alone and together; the engine filter narrows
    the engines too."""
    runs = fleet(hub)

    def expected(**wanted: str) -> list[str]:
        return [
            run_id
            for run_id, run in runs.items()
            if all(run[key].lower() == value.lower() for key, value in wanted.items())
        ]

    async with client(hub) as http:
        for params, wanted in [
            ({"project": "p1"}, {"project": "p1"}),
            ({"status": "succeeded"}, {"status": "Succeeded"}),
            ({"status": "FAILED"}, {"status": "Failed"}),
            ({"engine": "host-2"}, {"source": "host-2"}),
            ({"project": "p0", "status": "running", "engine": "host-1"},
             {"project": "p0", "status": "Running", "source": "host-1"}),
        ]:  # fmt: skip
            pages = await walk(http, limit="2", **params)
            listed = sorted(run["run_id"] for page in pages for run in page["runs"])
            assert listed == sorted(expected(**wanted)), params
            assert pages[0]["runs_matching"] == len(listed), params
            assert pages[0]["runs_total"] == 23
        by_engine = (await http.get("/api/state", params={"engine": "host-2"})).json()
        nothing = (await http.get("/api/state", params={"project": "nope"})).json()
    assert [e["source"] for e in by_engine["engines"]] == ["host-2"]
    assert (nothing["runs"], nothing["runs_matching"], nothing["runs_next"]) == ([], 0, None)


async def test_engines_page_and_filter_by_status(hub: DashboardHub) -> None:
    """engines_limit and engines_after page the engines by source; engine_status filters."""
    for n in range(5):
        hub.model.apply(status(f"host-{n}", "offline" if n % 2 else "online"))
    async with client(hub) as http:
        first = (await http.get("/api/state", params={"engines_limit": "2"})).json()
        second = (
            await http.get(
                "/api/state", params={"engines_limit": "2", "engines_after": first["engines_next"]}
            )
        ).json()
        offline = (await http.get("/api/state", params={"engine_status": "offline"})).json()
    assert [e["source"] for e in first["engines"]] == ["host-0", "host-1"]
    assert [e["source"] for e in second["engines"]] == ["host-2", "host-3"]
    assert (first["engines_total"], first["engines_matching"]) == (5, 5)
    assert [e["source"] for e in offline["engines"]] == ["host-1", "host-3"]
    assert offline["engines_matching"] == 2
    assert offline["engines_next"] is None


async def test_a_page_holds_its_place_while_new_runs_arrive(hub: DashboardHub) -> None:
    """Runs heard of after page 1 was read come before its cursor: page 2 neither repeats
    nor skips a row of what was there."""
    runs = fleet(hub)
    async with client(hub) as http:
        before = [run["run_id"] for page in await walk(http, limit="5") for run in page["runs"]]
        first = (await http.get("/api/state", params={"limit": "5"})).json()
        for n in range(3):
            hub.model.apply(started(f"new-{n}", "p0", "host-1"))
        second = (
            await http.get("/api/state", params={"limit": "5", "after": first["runs_next"]})
        ).json()
    page_two = [run["run_id"] for run in second["runs"]]
    assert page_two == before[5:10]
    assert second["runs_total"] == len(runs) + 3


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "501"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "ten"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "\u00b2"}, "limit must be a whole number from 1 to 500"),  # a digit, not ASCII
        ({"engines_limit": "-1"}, "engines_limit must be a whole number from 1 to 500"),
        ({"after": "not-a-cursor"}, "after must be the next_after of a page"),
        ({"after": "WzFd"}, "after must be the next_after of a page"),  # [1]: not a run's key
        ({"engines_after": "%%%"}, "engines_after must be the next_after of a page"),
    ],
)
async def test_bad_paging_is_a_400_saying_why(
    hub: DashboardHub, params: dict[str, str], said: str
) -> None:
    """A limit out of bounds or a cursor this dashboard never gave: 400 and why, never a 500."""
    async with client(hub) as http:
        answer = await http.get("/api/state", params=params)
    assert answer.status_code == 400
    assert said in answer.json()["error"]


async def test_without_paging_the_state_is_as_it_was(hub: DashboardHub) -> None:
    """No paging parameter: the keys scripts read before, every engine; paged: those and more."""
    fleet(hub)
    async with client(hub) as http:
        whole = (await http.get("/api/state")).json()
        paged = (await http.get("/api/state", params={"limit": "3"})).json()
    assert set(whole) == LEGACY_KEYS | ADDED_KEYS
    assert set(paged) > LEGACY_KEYS | ADDED_KEYS
    assert len(whole["runs"]) == 23
    assert [e["source"] for e in whole["engines"]] == ["host-1", "host-2"]
    assert {r["run_id"] for r in paged["runs"]} <= {r["run_id"] for r in whole["runs"]}


async def test_engines_come_a_page_at_a_time_without_a_limit(hub: DashboardHub) -> None:
    """Thousands of engines are megabytes: /api/state without parameters lists the first
    100 by source and says how many there are; a page of runs asked for without an
    engines_limit has 100 engines and the cursor of the rest."""
    for n in range(150):
        hub.model.apply(status(f"host-{n:03d}", "online"))
    async with client(hub) as http:
        whole = (await http.get("/api/state")).json()
        first = (await http.get("/api/state", params={"limit": "5"})).json()
        rest = (
            await http.get(
                "/api/state", params={"limit": "5", "engines_after": first["engines_next"]}
            )
        ).json()
    assert [e["source"] for e in whole["engines"]] == [f"host-{n:03d}" for n in range(100)]
    assert whole["engines_total"] == 150
    assert [e["source"] for e in first["engines"]] == [f"host-{n:03d}" for n in range(100)]
    assert [e["source"] for e in rest["engines"]] == [f"host-{n:03d}" for n in range(100, 150)]
    assert rest["engines_next"] is None


async def test_runs_filtered_by_name(hub: DashboardHub) -> None:
    """``name``: the runs of that name exactly (the Runs place's name filter), others not."""
    for run_id, name in (("run-a", "nightly"), ("run-b", "nightly-2"), ("run-c", None)):
        body = LifecycleEvent(event="ENGINE_STARTED", name=name)
        hub.model.apply(telemetry(body, run_id=run_id, ts=NOW))
    async with client(hub) as http:
        nightly = (await http.get("/api/state", params={"name": "nightly"})).json()
        nobody = (await http.get("/api/state", params={"name": "weekly"})).json()
    assert [run["run_id"] for run in nightly["runs"]] == ["run-a"]
    assert (nightly["runs_matching"], nightly["runs_total"]) == (1, 3)
    assert nobody["runs"] == []
