"""Hidden means unknown: in a team's dashboard, another tenant's run is answered exactly as a
run nobody ever heard of, by every endpoint that takes a run id: the same status, the same
body, the same SQL statements (no work done only for a hidden run that a stopwatch could
tell). Prefixes name only the runs the asker may see; a cancel of a hidden run is a 404,
never a 403 naming it, never a 500; viewers read their own projects' logs from the history;
people without a role learn nothing of the history, not even where it is."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received, telemetry
from cascade.control.access import Access, Identity, Roles
from cascade.dashboard import (
    DashboardHub,
    DashboardSettings,
    HistorySource,
    ProxySignIn,
    Tokens,
    create_app,
)
from cascade.dashboard.live import Follower
from cascade.history import History, Received, decode_message
from cascade.interfaces import TaskStateEvent, decode_envelope
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic

ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "operator"
scopes = ["org:acme", "task:etl_*"]
people = ["alice@example.com"]

[[grant]]
role = "admin"
scopes = ["global"]
people = ["root@example.com"]
""")
T0 = datetime.now(timezone.utc).timestamp() - 3600
# recorded (finished) runs: "0" spans every tenant, "0a" acme's two, "0b" globex's two
ETL_DONE = "0a" + "1" * 30  # acme/etl
WEB_DONE = "0a" + "2" * 30  # acme/web
GLOBEX_DONE = "0b" + "3" * 30  # globex/web
GLOBEX_DONE_TOO = "0b" + "4" * 30  # globex/web
# live runs (the dashboard hears them): "1" spans both tenants
ETL_LIVE = "1a" + "5" * 30  # acme/etl
GLOBEX_LIVE = "1b" + "6" * 30  # globex/web
HIDDEN = {GLOBEX_DONE, GLOBEX_DONE_TOO, GLOBEX_LIVE}
# (another tenant's run or prefix, an unknown one of the same shape)
PAIRS = [
    (GLOBEX_DONE, "0d" + "3" * 30),
    (GLOBEX_LIVE, "1d" + "6" * 30),
    ("0b", "0d"),
    ("1b", "1d"),
    ("0b3", "0d3"),
]


def who(name: str) -> dict[str, str]:
    return {"x-test-user": name}


VERA, ALICE, ROOT, EVE = (who(f"{n}@example.com") for n in ("vera", "alice", "root", "eve"))


def _event(run_id: str, org: str, project: str, ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope({
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": run_id,
        "org_id": org, "project_id": project, "source": "host-1", "body": body,
    })  # fmt: skip
    return Received(f"cascade/telemetry/{org}/{project}/{run_id}/events", envelope, ts)


def _finished_run(run_id: str, org: str, project: str) -> list[Received]:
    task = {"type": "TaskStateEvent", "task_id": "etl_load-1", "task_name": "etl_load"}
    logs = LogBatch(
        run_id=run_id, org_id=org, project_id=project, source="host-1", seq=1,
        ts=datetime.fromtimestamp(T0, timezone.utc).isoformat(),
        lines=[LogLine(ts=datetime.fromtimestamp(T0 + 1, timezone.utc).isoformat(),
                       task_id="etl_load-1", task_name="etl_load", n=1,
                       message=f"the secret of {org}/{project}")],
    )  # fmt: skip
    batch = decode_message(received(logs_topic(org, project, run_id), logs), received_at=T0)
    assert batch is not None
    return [
        _event(run_id, org, project, T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}),
        _event(run_id, org, project, T0 + 1, {**task, "state": "RUNNING"}),
        _event(run_id, org, project, T0 + 2, {**task, "state": "COMPLETED"}),
        _event(run_id, org, project, T0 + 3,
               {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}),
        batch,
    ]  # fmt: skip


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    path = tmp_path / "history.sqlite3"
    with History(path, mode="write") as writer:
        writer.store([
            *_finished_run(ETL_DONE, "acme", "etl"),
            *_finished_run(WEB_DONE, "acme", "web"),
            *_finished_run(GLOBEX_DONE, "globex", "web"),
            *_finished_run(GLOBEX_DONE_TOO, "globex", "web"),
        ])  # fmt: skip
    with History(path) as reader:
        yield reader


@pytest.fixture
async def hub(broker: InMemoryBroker) -> AsyncIterator[DashboardHub]:
    """A hub hearing two live runs, one of acme/etl, one of globex/web; a cancel nobody
    answers ends after 0.3 s."""
    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=0.3)
    await hub.start()
    now = datetime.now(timezone.utc)
    for run_id, org, project in ((ETL_LIVE, "acme", "etl"), (GLOBEX_LIVE, "globex", "web")):
        body = TaskStateEvent(task_id="t-1", task_name="etl_load", state="RUNNING")
        hub.model.apply(telemetry(body, run_id=run_id, org_id=org, project_id=project, ts=now))
    yield hub
    await hub.stop()


def _client(hub: DashboardHub, history: History | HistorySource) -> httpx.AsyncClient:
    app = create_app(
        hub,
        DashboardSettings(
            token=Tokens.parse(["script@example.com=s3cret"], "dash"),
            roles=ROLES,
            sign_in=ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups"),
            history=history,
        ),
    )
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


@pytest.fixture
async def http(hub: DashboardHub, history: History) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(hub, history) as client:
        yield client


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement run meanwhile, as sent (the values are parameters)."""
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)


async def test_an_ambiguous_prefix_lists_only_the_runs_the_asker_may_see(
    http: httpx.AsyncClient,
) -> None:
    """Was: a viewer of acme/etl asking ``id=0`` got a 400 listing other projects' runs."""
    mine = await http.get("/api/history/run", params={"id": "0"}, headers=VERA)
    assert mine.status_code == 200, mine.text  # of the runs she sees, one has it
    assert mine.json()["run"]["run_id"] == ETL_DONE
    several = await http.get("/api/history/run", params={"id": "0"}, headers=ALICE)
    assert several.status_code == 400
    assert "0a1111111111" in several.text
    assert "0a2222222222" in several.text
    assert "0b" not in several.text  # globex's runs are not named
    hidden_only = await http.get("/api/history/run", params={"id": "0b"}, headers=ALICE)
    none = await http.get("/api/history/run", params={"id": "0d"}, headers=ALICE)
    assert (hidden_only.status_code, hidden_only.json()) == (none.status_code, none.json())
    assert none.status_code == 404


async def test_a_cancel_of_a_hidden_run_is_the_unknown_runs_404(http: httpx.AsyncClient) -> None:
    """Was: 403 "not an operator of project globex/web" against an unknown run's 404."""
    for hidden, unknown in PAIRS:
        theirs = await http.post(f"/api/runs/{hidden}/cancel", headers=ALICE)
        nobodys = await http.post(f"/api/runs/{unknown}/cancel", headers=ALICE)
        assert theirs.status_code == nobodys.status_code == 404, hidden
        assert theirs.json() == _renamed(nobodys.json(), unknown, hidden)
        assert "globex" not in theirs.text
    # a run she may see but not operate is a 403: it names what she sees only
    visible = await http.post(f"/api/runs/{ETL_LIVE}/cancel", headers=VERA)
    assert visible.status_code == 403
    assert visible.json()["error"] == "vera@example.com is not an operator of project acme/etl"


async def test_an_operators_cancel_of_another_projects_finished_run_is_no_500(
    http: httpx.AsyncClient,
) -> None:
    """Was: 500 (the project was read from the history with ``limit=0``, a ValueError)."""
    theirs = await http.post(f"/api/runs/{GLOBEX_DONE}/cancel", headers=ALICE)
    assert theirs.status_code == 404
    # a finished run of a project she operates: sent to its engine, which is gone
    ours = await http.post(f"/api/runs/{WEB_DONE}/cancel", headers=ALICE)
    assert ours.status_code == 504, ours.text
    assert "no engine answered" in ours.json()["error"]


async def test_a_viewer_reads_its_projects_logs_from_the_history(http: httpx.AsyncClient) -> None:
    """Was: 400 "limit must be at least 1", always."""
    mine = await http.get(f"/api/history/runs/{ETL_DONE}/logs", headers=VERA)
    assert mine.status_code == 200, mine.text
    assert [line["message"] for line in mine.json()["lines"]] == ["the secret of acme/etl"]
    theirs = await http.get(f"/api/history/runs/{GLOBEX_DONE}/logs", headers=VERA)
    assert "globex" not in theirs.text
    found = await http.get("/api/history/runs", params={"logging": "secret"}, headers=VERA)
    assert [run["run_id"] for run in found.json()["runs"]] == [ETL_DONE]


async def test_an_outsider_learns_nothing_of_the_history(
    hub: DashboardHub, history: History
) -> None:
    """Was: a signed-in person without a role got 200 and the database's path."""
    async with _client(hub, history) as http:
        nobody = await http.get("/api/history")
        eve = await http.get("/api/history", headers=EVE)
        vera = await http.get("/api/history", headers=VERA)
        root = await http.get("/api/history", headers=ROOT)
    assert (nobody.status_code, eve.status_code) == (401, 403)
    assert str(history.location) not in nobody.text + eve.text
    assert "history" not in eve.json()
    assert vera.json()["location"] is None  # where it is: admins over global only
    assert vera.json()["history"] is True
    assert root.json()["location"] == history.location


async def test_without_a_history_only_admins_are_told_where_it_would_be(
    hub: DashboardHub, tmp_path: Path
) -> None:
    missing = tmp_path / "not-yet.sqlite3"
    source = HistorySource(location=str(missing), default=missing)
    async with _client(hub, source) as http:
        status = await http.get("/api/history", headers=VERA)
        runs = await http.get("/api/history/runs", headers=VERA)
        root = await http.get("/api/history", headers=ROOT)
    assert status.json()["history"] is False
    assert str(missing) not in status.text + runs.text
    assert runs.status_code == 404
    assert str(missing) in root.json()["note"]


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` (JSON) with every ``old`` in its text as ``new``."""
    return json.loads(json.dumps(value).replace(old, new))


def _stable(answer: httpx.Response) -> Any:
    """The body, the clock's reading left out (it moves between two requests)."""
    body = answer.json()
    if isinstance(body, dict):
        body.pop("now", None)
    return body


ENDPOINTS = [
    ("GET", "/api/state?run={}"),
    ("GET", "/api/history/run?id={}"),
    ("GET", "/api/history/run?id={}&after="),
    ("GET", "/api/history/runs/{}/logs"),
    ("POST", "/api/runs/{}/cancel"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("asker", [VERA, ALICE], ids=["viewer", "operator"])
async def test_every_run_addressed_endpoint_answers_a_hidden_run_as_an_unknown_one(
    http: httpx.AsyncClient,
    statements: list[str],
    method: str,
    path: str,
    asker: dict[str, str],
) -> None:
    async def ask(run_id: str) -> tuple[httpx.Response, list[str]]:
        statements.clear()
        answer = await http.request(method, path.format(run_id), headers=asker)
        return answer, list(statements)

    for hidden, unknown in PAIRS:
        (theirs, their_cost), (nobodys, nobodys_cost) = await ask(hidden), await ask(unknown)
        assert theirs.status_code == nobodys.status_code, hidden
        assert _stable(theirs) == _renamed(_stable(nobodys), unknown, hidden), hidden
        assert their_cost == nobodys_cost, hidden  # the same queries: the same time class
        assert theirs.status_code < 500
    # a prefix every tenant's runs have: only the asker's runs are named, if any (a cancel
    # of the one she sees may go on to its engine: a 403, or a 504 as none answers here)
    for spanning in ("0", "1", ""):
        answer, _ = await ask(spanning)
        assert answer.status_code != 500
        assert not any(run_id[:6] in answer.text for run_id in HIDDEN), spanning
        assert "globex" not in answer.text


@pytest.mark.parametrize("asker", ["vera@example.com", "alice@example.com"])
async def test_a_stream_opens_a_hidden_run_as_an_unknown_one(hub: DashboardHub, asker: str) -> None:
    among = Access.of(ROLES, Identity(asker, "oidc")).among()

    def first(run_id: str) -> Any:
        follower = Follower.asked(hub, {"since": "0", "run": run_id}, among=among)
        raw = follower.next_event() or b""
        event = json.loads(raw.split(b"data: ", 1)[1])
        assert not {"run", "tasks", "logs"} & set(event)
        event.pop("now")
        return event

    for hidden, unknown in PAIRS:
        assert first(hidden) == first(unknown)


async def test_a_readers_run_counts_are_of_the_runs_it_may_see(
    http: httpx.AsyncClient, hub: DashboardHub
) -> None:
    """Was: ``runs_total`` counted every project's runs (the fleet's size, to any viewer)."""
    for asker in (VERA, ALICE):
        state = (await http.get("/api/state", headers=asker)).json()
        assert (state["runs_total"], state["runs_matching"]) == (1, 1)
    everything = (await http.get("/api/state", headers=ROOT)).json()
    assert everything["runs_total"] == 2
    among = Access.of(ROLES, Identity("vera@example.com", "oidc")).among()
    follower = Follower.asked(hub, {"since": "0"}, among=among)
    raw = follower.next_event() or b""
    runs = json.loads(raw.split(b"data: ", 1)[1])["runs"]
    assert (runs["total"], runs["matching"]) == (1, 1)
