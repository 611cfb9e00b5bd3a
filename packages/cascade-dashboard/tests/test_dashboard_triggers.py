"""The triggers ``GET /api/workflows`` lists beside each workflow in a team's dashboard, each
saying whether the asker may pause and resume it (``steerable``: an operator whose grants
cover ``trigger:<name>`` may, on the widest scope they cover; a viewer, or an operator of its
project only, may not) and its pause as its server announces it; a pause on the scope given
goes through ``/api/constraints`` as any pause, refused to a viewer, published for its
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
    ServedWorkflow,
    served_topic,
)
from cascade.interfaces.wire import ServedTrigger

ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com", "tina@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl", "trigger:x"]
people = ["sam@example.com"]

[[grant]]
role = "operator"
scopes = ["trigger:x"]
people = ["tina@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl"]
people = ["otto@example.com"]
""")


def who(name: str) -> dict[str, str]:
    return {"x-test-user": f"{name}@example.com", "content-type": "application/json"}


@pytest.fixture
async def hub(broker: InMemoryBroker) -> AsyncIterator[DashboardHub]:
    """A hub that heard acme/etl's etl-1 announce `load` and its triggers `x` (paused) and
    `y`."""
    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=0.5)
    await hub.start()
    x = ServedTrigger(name="x", workflow="load", kind="signal", on="deploys/approved",
                      paused=True, paused_by="sam", paused_reason="db migration")  # fmt: skip
    y = ServedTrigger(name="y", workflow="load", kind="after", on="etl Succeeded")
    said = ServedAnnouncement(source="etl-1", org_id="acme", project_id="etl", capacity=4,
                              workflows=[ServedWorkflow(name="load")], triggers=[x, y])  # fmt: skip
    async with InMemoryConnector(broker, presence=False) as server:
        await server.publish(served_topic("acme", "etl", "etl-1"), said, retain=True)
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


async def test_the_triggers_are_listed_with_who_may_pause_them(http: httpx.AsyncClient) -> None:
    """sam (an operator over trigger:x in acme/etl) may steer x on that project's scope, tina
    (over trigger:x anywhere) on every org's; neither y; vera (a viewer) and otto (an operator
    of the project, not of its triggers) neither. The scope given is the one the pause takes:
    sam's pause on it is published on x's pause topic in acme/etl, vera's is a 403."""
    expected: dict[str, dict[str, str | None]] = {
        "sam": {"x": "project:acme/etl/trigger:x", "y": None},
        "tina": {"x": "trigger:x", "y": None},
        "vera": {"x": None, "y": None},
        "otto": {"x": None, "y": None},
    }
    for name, scopes in expected.items():
        answer = await http.get("/api/workflows", headers=who(name))
        assert answer.status_code == 200, answer.text
        [load] = answer.json()["workflows"]
        triggers = {t["name"]: t for t in load["triggers"]}
        assert {t: triggers[t].get("scope") for t in triggers} == scopes, name
        assert {t: triggers[t]["steerable"] for t in triggers} == {
            t: scope is not None for t, scope in scopes.items()
        }, name
        x = triggers["x"]
        assert (x["paused"], x["paused_by"], x["paused_reason"]) == (True, "sam", "db migration")
        assert (x["org_id"], x["project_id"], x["source"]) == ("acme", "etl", "etl-1")
    body = {"scope": expected["sam"]["x"], "type": "pause", "reason": "db migration"}
    refused = await http.post("/api/constraints", json=body, headers=who("vera"))
    assert refused.status_code == 403, refused.text
    paused = await http.post("/api/constraints", json=body, headers=who("sam"))
    assert paused.status_code == 200, paused.text
    assert [p["topic"] for p in paused.json()["published"]] == [
        "cascade/constraints/project/acme/etl/trigger/x/pause"
    ]
