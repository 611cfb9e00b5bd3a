"""The page's places have addresses (/runs, /workflows, /decisions, /engines, /constraints,
/audit, /settings, /tasks, /runs/ID, /runs/ID/tasks/TASK, /history/tasks/NAME; /history/runs/ID
redirects to /runs/ID): each serves the page with the first state of the view it names, so that
its first paint shows what the dashboard holds; that state is data never run, whatever the
broker named things, and a team member's is of what they may see."""

from __future__ import annotations

import gzip
import html
import json
import re
from datetime import datetime, timezone
from ipaddress import ip_network
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import telemetry
from cascade.control.access import Access, Identity, Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.dashboard.live import Follower
from cascade.interfaces import TaskStateEvent

RUN = "5" * 32
THEIRS = "6" * 32
XSS = "</script><script>alert(1)</script><!--"
ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]
""")
VERA = {"x-test-user": "vera@example.com"}
ROLES_ACCESS = Access.of(ROLES, Identity("vera@example.com", "proxy"))
FIRST = re.compile(r'<script id="first-state" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
async def heard(hub: DashboardHub) -> DashboardHub:
    """A hub that heard a run of acme/etl with a task named like markup, and one of globex."""
    now = datetime.now(timezone.utc)
    for run_id, org, project, name in ((RUN, "acme", "etl", XSS), (THEIRS, "globex", "web", "x")):
        body = TaskStateEvent(task_id="t-1", task_name=name, state="RUNNING")
        hub.model.apply(telemetry(body, run_id=run_id, org_id=org, project_id=project, ts=now))
    return hub


def _client(hub: DashboardHub, **settings: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(**settings)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def first_state(page: httpx.Response) -> Any:
    """The state the page came with (``None``: none)."""
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    (found,) = FIRST.findall(page.text)
    return json.loads(found)


async def test_every_place_is_the_page_with_its_first_state(heard: DashboardHub) -> None:
    async with _client(heard) as http:
        home = first_state(await http.get("/"))
        run = first_state(await http.get(f"/runs/{RUN}"))
        task = first_state(await http.get(f"/runs/{RUN}/tasks/t-1"))
        legacy = first_state(await http.get("/", params={"run": RUN}))
        moved = await http.get(f"/history/runs/{RUN}", params={"rows": "5"})
        recorded = first_state(await http.get(f"/history/runs/{RUN}", follow_redirects=True))
        chart = first_state(await http.get("/history/tasks/load%2Fslash"))
        places = {
            place: first_state(await http.get(f"/{place}"))
            for place in ("runs", "workflows", "decisions", "engines", "constraints", "audit",
                          "settings", "tasks", "problems")
        }  # fmt: skip
        unknown = await http.get("/nowhere")
        api = await http.get(f"/api/runs/{RUN}")  # the API's paths are not places
    assert home["connection"]["connected"] is True
    assert sorted(home["runs"]["order"]) == sorted([RUN, THEIRS])
    assert "run" not in home
    assert run["run"]["run_id"] == RUN
    assert [t["task_id"] for t in run["tasks"]["upsert"]] == ["t-1"]
    assert task["run"]["run_id"] == legacy["run"]["run_id"] == RUN
    assert (moved.status_code, moved.headers["location"]) == (301, f"/runs/{RUN}?rows=5")
    assert recorded["run"]["run_id"] == RUN  # the run's one page, live or recorded alike
    assert "run" not in chart
    for state in places.values():
        assert sorted(state["runs"]["order"]) == sorted([RUN, THEIRS])
        assert "run" not in state
    assert unknown.status_code == 404
    assert api.status_code in (404, 405)


async def test_the_short_id_a_table_shows_is_an_address_of_the_run(heard: DashboardHub) -> None:
    """/runs/PREFIX (12 digits as tables print them, or 8) is the run's page under its whole
    id, its task and query kept; a prefix no run has is the page saying it holds none."""
    async with _client(heard) as http:
        short = await http.get(f"/runs/{RUN[:12]}")
        task = await http.get(f"/runs/{RUN[:8]}/tasks/t-1", params={"rows": "5"})
        followed = first_state(await http.get(f"/runs/{RUN[:12]}", follow_redirects=True))
        unknown = first_state(await http.get("/runs/7777777777"))
    assert (short.status_code, short.headers["location"]) == (302, f"/runs/{RUN}")
    assert task.headers["location"] == f"/runs/{RUN}/tasks/t-1?rows=5"
    assert followed["run"]["run_id"] == RUN
    assert unknown["run"] is None


async def test_a_team_members_short_address_names_only_runs_they_may_see(
    heard: DashboardHub,
) -> None:
    """A prefix of a run another project's: the page as for a run nobody heard of."""
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")
    async with _client(heard, roles=ROLES, sign_in=sign_in) as http:
        mine = await http.get(f"/runs/{RUN[:12]}", headers=VERA)
        theirs = await http.get(f"/runs/{THEIRS[:12]}", headers=VERA)
    assert mine.headers["location"] == f"/runs/{RUN}"
    assert theirs.status_code == 200


async def test_a_run_not_heard_of_yet_is_null_in_the_first_state(heard: DashboardHub) -> None:
    async with _client(heard) as http:
        unknown = first_state(await http.get("/runs/" + "7" * 32))
    assert unknown["run"] is None
    assert unknown["tasks"] == {"reset": True, "upsert": [], "through": unknown["version"]}


async def test_names_in_the_first_state_are_data_never_markup(heard: DashboardHub) -> None:
    """A task named ``</script><script>...``: the data block is not ended, nor a comment
    opened; parsed, the name is as the engine sent it."""
    async with _client(heard) as http:
        page = await http.get(f"/runs/{RUN}")
    block = FIRST.findall(page.text)[0]
    assert not {"<", ">", "&"} & set(block)
    assert page.text.count("<script") == page.text.count("</script>") == 2  # main.js, the data
    assert "alert(1)" not in html.unescape(page.text.replace(block, ""))
    assert [t["name"] for t in first_state(page)["tasks"]["upsert"]] == [XSS]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


async def test_rows_bound_the_first_states_lists(heard: DashboardHub) -> None:
    async with _client(heard) as http:
        one = first_state(await http.get("/", params={"rows": "1"}))
        odd = first_state(await http.get("/", params={"rows": "many"}))
    assert (len(one["runs"]["order"]), one["runs"]["matching"]) == (1, 2)
    assert one["runs"]["next_after"] is not None
    assert len(odd["runs"]["order"]) == 2  # 25 a page


async def test_a_filtered_runs_address_is_filtered_in_its_first_state(heard: DashboardHub) -> None:
    """/runs?project=etl&name=... (a link someone sent): the first paint is of the runs the
    filters pick, as the stream's would be."""
    async with _client(heard) as http:
        etl = first_state(await http.get("/runs", params={"project": "etl"}))
        named = first_state(await http.get("/runs", params={"name": "nobody's"}))
        failed = first_state(await http.get("/", params={"status": "failed"}))
    assert etl["runs"]["order"] == [RUN]
    assert (etl["runs"]["matching"], etl["runs"]["total"]) == (1, 2)
    assert named["runs"]["order"] == failed["runs"]["order"] == []


async def test_a_big_first_state_comes_gzipped(hub: DashboardHub) -> None:
    now = datetime.now(timezone.utc)
    for n in range(400):
        body = TaskStateEvent(task_id=f"task-{n:04d}", task_name="download", state="RUNNING")
        hub.model.apply(telemetry(body, run_id=RUN, ts=now))
    async with _client(hub) as http:
        page = await http.get(f"/runs/{RUN}", headers={"accept-encoding": "gzip"})
        plain = await http.get(f"/runs/{RUN}", headers={"accept-encoding": "identity"})
    assert page.headers["content-encoding"] == "gzip"
    assert int(page.headers["content-length"]) < len(gzip.decompress(gzip.compress(page.content)))
    assert len(first_state(page)["tasks"]["upsert"]) == len(first_state(plain)["tasks"]["upsert"])
    assert "content-encoding" not in plain.headers


async def test_a_team_member_gets_the_first_state_of_what_they_may_see(
    heard: DashboardHub,
) -> None:
    """Nobody signed in: no state (the page asks them to sign in); Vera (acme/etl): her run
    only, and another tenant's run as one never heard of."""
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")
    async with _client(heard, roles=ROLES, sign_in=sign_in) as http:
        nobody = first_state(await http.get(f"/runs/{RUN}"))
        mine = first_state(await http.get("/", headers=VERA))
        theirs = first_state(await http.get(f"/runs/{THEIRS}", headers=VERA))
        unknown = first_state(await http.get("/runs/" + "7" * 32, headers=VERA))
    assert nobody is None
    assert mine["runs"]["order"] == [RUN]
    assert mine["runs"]["total"] == 1
    for state in (theirs, unknown):
        state.pop("now")
    assert theirs == unknown
    assert THEIRS not in json.dumps(theirs)


async def test_a_readers_stream_shows_a_run_heard_of_after_it_opened(hub: DashboardHub) -> None:
    """A team member's page opened at a run's address before the run was heard of: its run
    and tasks come once it is, if it is one they may see; another tenant's run, never."""
    among = ROLES_ACCESS.among()
    mine, theirs = "8" * 32, "9" * 32
    followers = {
        run_id: Follower.asked(hub, {"since": "0", "run": run_id}, among=among)
        for run_id in (mine, theirs)
    }
    for follower in followers.values():
        first = _event(follower)
        assert not {"run", "tasks", "logs"} & set(first)
    now = datetime.now(timezone.utc)
    for run_id, org, project in ((mine, "acme", "etl"), (theirs, "globex", "web")):
        body = TaskStateEvent(task_id="t-1", task_name="load", state="RUNNING")
        hub.model.apply(telemetry(body, run_id=run_id, org_id=org, project_id=project, ts=now))
    shown = _event(followers[mine])
    assert shown["run"]["run_id"] == mine
    assert [t["task_id"] for t in shown["tasks"]["upsert"]] == ["t-1"]
    hidden = followers[theirs].next_event()
    assert hidden is None or theirs.encode() not in hidden
    assert theirs not in json.dumps(_event(Follower.asked(hub, {"since": "0"}, among=among)))


def _event(follower: Follower) -> Any:
    raw = follower.next_event()
    assert raw is not None
    return json.loads(raw.split(b"data: ", 1)[1])
