"""``GET /api/schedules`` in a team's dashboard: each schedule the serving processes announce,
once, of the projects the asker may see only, saying whether they may pause it (an operator
over ``schedule:<name>`` may, a viewer or an operator of its project only may not); a pause of
it goes through ``/api/constraints`` as any pause, refused to a viewer, published for its
operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.interfaces.serving import (
    ServedAnnouncement,
    ServedSchedule,
    ServedWorkflow,
    served_topic,
)

ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl", "schedule:nightly"]
people = ["sam@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl"]
people = ["otto@example.com"]
""")


def who(name: str) -> dict[str, str]:
    return {"x-test-user": f"{name}@example.com", "content-type": "application/json"}


@pytest.fixture
async def hub(broker: InMemoryBroker) -> AsyncIterator[DashboardHub]:
    """A hub that heard acme/etl's server announce `nightly` (paused) and globex/web's
    announce `hourly`."""
    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=0.5)
    await hub.start()
    nightly = ServedSchedule(name="nightly", workflow="load", cron="0 2 * * *", tz="Europe/Berlin",
                             next="2026-11-28T01:00:00+00:00", last_run="ab" * 16,
                             last_slot="2026-11-27T01:00:00+00:00", paused=True,
                             paused_by="sam", paused_reason="db migration", skipped=2)  # fmt: skip
    hourly = ServedSchedule(name="hourly", workflow="sync", every=3600.0)
    async with InMemoryConnector(broker, presence=False) as servers:
        for source, org, project, schedule in (("etl-1", "acme", "etl", nightly),
                                               ("web-1", "globex", "web", hourly)):  # fmt: skip
            said = ServedAnnouncement(source=source, org_id=org, project_id=project, capacity=4,
                                      workflows=[ServedWorkflow(name=schedule.workflow)],
                                      schedules=[schedule])  # fmt: skip
            await servers.publish(served_topic(org, project, source), said, retain=True)
        await broker.idle()
    yield hub
    await hub.stop()


@pytest.fixture
async def http(hub: DashboardHub) -> AsyncIterator[httpx.AsyncClient]:
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")
    app = create_app(hub, DashboardSettings(roles=ROLES, sign_in=sign_in))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def test_the_schedules_are_listed_with_who_may_pause_them(
    http: httpx.AsyncClient,
) -> None:
    """Of acme/etl only; steerable by sam (schedule:nightly in acme/etl: on that project's
    scope), not by vera nor otto."""
    for name, steerable in (("sam", True), ("otto", False), ("vera", False)):
        answer = await http.get("/api/schedules", headers=who(name))
        assert answer.status_code == 200, answer.text
        [nightly] = answer.json()["schedules"]
        assert nightly["steerable"] is steerable, name
        assert nightly.get("scope") == ("project:acme/etl/schedule:nightly" if steerable else None)
        expected = {
            "name": "nightly", "workflow": "load", "cron": "0 2 * * *", "tz": "Europe/Berlin",
            "next": "2026-11-28T01:00:00+00:00", "last_slot": "2026-11-27T01:00:00+00:00",
            "last_run": "ab" * 16, "paused": True, "paused_by": "sam",
            "paused_reason": "db migration", "skipped": 2, "servers": ["etl-1"],
        }  # fmt: skip
        assert {key: nightly[key] for key in expected} == expected
    assert (await http.get("/api/schedules")).status_code == 401


async def test_a_schedules_pause_is_its_operators_only(http: httpx.AsyncClient) -> None:
    """vera's and otto's pause of acme/etl's nightly is a 403 naming the scope; sam's is
    published on the schedule's pause topic in that project, and his resume clears it; his
    pause of every org's nightly is a 403 (his grant places schedule:nightly in acme/etl)."""
    scope = "project:acme/etl/schedule:nightly"
    body = {"scope": scope, "type": "pause", "reason": "db migration"}
    for name in ("vera", "otto"):
        refused = await http.post("/api/constraints", json=body, headers=who(name))
        assert refused.status_code == 403, refused.text
        assert scope in refused.json()["error"]
    everywhere = {**body, "scope": "schedule:nightly"}
    refused = await http.post("/api/constraints", json=everywhere, headers=who("sam"))
    assert refused.status_code == 403, refused.text
    paused = await http.post("/api/constraints", json=body, headers=who("sam"))
    assert paused.status_code == 200, paused.text
    assert [p["topic"] for p in paused.json()["published"]] == [
        "cascade/constraints/project/acme/etl/schedule/nightly/pause"
    ]
    resumed = await http.delete(f"/api/constraints?scope={scope}", headers=who("sam"))
    assert resumed.status_code == 200, resumed.text
