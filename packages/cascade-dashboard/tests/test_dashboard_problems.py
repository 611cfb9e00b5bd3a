"""What went wrong, per source, bounded by what a page shows: `/api/state` and a stream's first
event carry the worst few sources of each list and their totals, whatever the fleet's size;
`/api/problems/{kind}` pages through every source."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from cascade.connector_kit.testing import received, telemetry
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.live import Follower
from cascade.interfaces import LifecycleEvent, StatusMessage, TaskStateEvent, status_topic
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_topic,
)

ENGINES = 10_000
FIRST_ANSWER = 100_000  # bytes: what a page's first answer may weigh at any fleet size
NOW = datetime.now(timezone.utc)


def fleet_that_missed(hub: DashboardHub, engines: int = ENGINES) -> None:
    """``engines`` engines online, each with a summary listing its live run, each of whose
    events it missed ``n % 7 + 1`` (engine n); every second one also sent a message stamped
    an hour ahead (refused), every tenth shares its id with another live engine."""
    for n in range(engines):
        source, run_id = f"engine-{n:05}", f"run-{n:05}"
        conflict = 2 if n % 10 == 0 else None
        said = StatusMessage(status="online", source=source, session=1, ts=NOW.isoformat(),
                             conflict_session=conflict)  # fmt: skip
        hub.model.apply(received(status_topic(source), said, retain=True))
        listed = SummaryRun(run_id=run_id, org_id="local", project_id="p", status="Running",
                            started=NOW.isoformat(), tasks=TaskTally(running=1),
                            planned=10)  # fmt: skip
        summary = EngineSummary(source=source, ts=NOW.isoformat(), runs=RunTally(running=1),
                                listed=[listed])  # fmt: skip
        hub.model.apply(received(summary_topic(source), summary, retain=True))
        start = LifecycleEvent(event="ENGINE_STARTED", tasks=10)
        hub.model.apply(telemetry(start, run_id=run_id, source=source, seq=1, ts=NOW))
        task = TaskStateEvent(task_id="t-1", task_name="t", state="RUNNING")
        hub.model.apply(telemetry(task, run_id=run_id, source=source, seq=n % 7 + 3, ts=NOW))
        if n % 2 == 0:
            ahead = NOW + timedelta(hours=1)
            hub.model.apply(telemetry(task, run_id=run_id, source=source, seq=99, ts=ahead))


def client(hub: DashboardHub) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def every_page(http: httpx.AsyncClient, kind: str, limit: int) -> list[dict[str, Any]]:
    """Every item of ``/api/problems/{kind}``, following ``next_after``."""
    items: list[dict[str, Any]] = []
    after = None
    for _ in range(ENGINES // limit + 2):  # a cursor that never moves on fails, not hangs
        params = {"limit": str(limit), **({"after": after} if after else {})}
        answer = await http.get(f"/api/problems/{kind}", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        after = page["next_after"]
        if after is None:
            return items
    raise AssertionError("the pages never end")


async def test_ten_thousand_sources_that_missed_fit_a_first_answer(hub: DashboardHub) -> None:
    fleet_that_missed(hub)
    async with client(hub) as http:
        answer = await http.get("/api/state")
        assert answer.status_code == 200
        assert len(answer.content) <= FIRST_ANSWER, len(answer.content)
        state = answer.json()

        # the totals, and the worst sources first (the most missed, then by source)
        missed = state["missed_total"]
        assert missed["sources"] == ENGINES
        assert missed["events"] == sum(n % 7 + 1 for n in range(ENGINES))
        assert missed["rest"] == "/api/problems/missed"
        assert len(state["missed"]) == 10
        assert state["missed"][0] == {"source": "engine-00006", "events": 7,
                                      "since": state["missed"][0]["since"]}  # fmt: skip
        assert all(m["events"] == 7 for m in state["missed"])
        # refusals name 1,024 sources at most, the others counted together under "…"
        assert state["refused_total"]["sources"] == 1_024 + 1
        assert state["refused_total"]["messages"] == ENGINES // 2
        assert state["refused"][0]["source"] == "…"
        assert state["conflicts_total"]["sources"] == ENGINES // 10
        assert state["conflicts"][0] == {"source": "engine-00000", "session": 1,
                                         "conflict_session": 2}  # fmt: skip

        # a paged answer carries the same summaries
        paged = (await http.get("/api/state", params={"limit": "100"})).json()
        assert paged["missed_total"] == missed
        assert len(paged["missed"]) == 10

        # the whole lists, a page at a time
        every = await every_page(http, "missed", 500)
        assert [m["source"] for m in every] == [f"engine-{n:05}" for n in range(ENGINES)]
        assert [m["events"] for m in every] == [n % 7 + 1 for n in range(ENGINES)]
        refused = await every_page(http, "refused", 500)
        assert sum(r["messages"] for r in refused) == ENGINES // 2
        conflicts = await every_page(http, "conflicts", 500)
        assert [c["source"] for c in conflicts] == [f"engine-{n:05}" for n in range(0, ENGINES, 10)]

    # a page's stream starts with a snapshot as small
    first = Follower.asked(hub, {"since": "0"}).next_event()
    assert first is not None
    assert len(first) <= FIRST_ANSWER, len(first)


async def test_a_short_list_says_there_is_no_rest(hub: DashboardHub) -> None:
    fleet_that_missed(hub, engines=3)
    async with client(hub) as http:
        state = (await http.get("/api/state")).json()
        assert state["missed_total"] == {"sources": 3, "events": 1 + 2 + 3, "rest": None}
        assert [m["source"] for m in state["missed"]] == ["engine-00002", "engine-00001",
                                                          "engine-00000"]  # fmt: skip
        page = (await http.get("/api/problems/missed", params={"limit": "2"})).json()
        assert (page["total"], len(page["items"])) == (3, 2)
        assert page["next_after"] is not None


async def test_a_bad_list_or_cursor_is_refused_with_a_reason(hub: DashboardHub) -> None:
    async with client(hub) as http:
        unknown = await http.get("/api/problems/everything")
        assert unknown.status_code == 400
        assert "no such list" in unknown.text
        bad = await http.get("/api/problems/missed", params={"after": "!!"})
        assert bad.status_code == 400
        too_many = await http.get("/api/problems/missed", params={"limit": "100000"})
        assert too_many.status_code == 400


async def test_each_banner_opens_the_list_behind_it(hub: DashboardHub) -> None:
    """The page's missed, refused and silent banners are links to the Problems place (served
    at /problems), whose script reads the whole lists, which answer."""
    fleet_that_missed(hub, 30)
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = (await http.get("/")).text
        place = await http.get("/problems")
        script = (await http.get("/static/problems.js")).text
        for kind in ("missed", "refused", "silent"):
            link = re.search(f'<a id="{kind}" [^>]*>', page)
            assert link is not None
            assert 'href="/problems" data-go' in link.group(0)  # no target: the place, not JSON
        assert place.status_code == 200
        assert 'id="place-problems" data-place="problems"' in place.text
        assert '"/api/problems/" + kind' in script
        for kind in ("missed", "refused", "conflicts", "silent"):
            assert f'id="p-{kind}"' in page
            assert f'id="p-{kind}-next"' in page  # every list pages
            listed = await http.get(f"/api/problems/{kind}")
            assert listed.status_code == 200
            assert listed.json()["total"] > 0 or kind == "silent"  # none is silent yet
