"""The dashboard on an in-memory broker; and, for the tests that check the dashboard says what
`cascade` says, the command on the same broker (the fixtures: ``cascade.testkit``'s); a team's
dashboard of operators who start and rerun served workflows (``audit``, ``http``) and the
processes serving them (``serve``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_network

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.dashboard.auth import AccessEvent, AccessLog
from cascade.interfaces.serving import ServedWorkflow
from cascade.testkit import ServingEngine
from cascade.testkit import broker as broker  # fixture
from cascade.testkit import hub as hub  # fixture
from cascade.testkit import invoke as invoke  # fixture
from cascade.testkit import own_default_history as own_default_history  # fixture
from cascade.testkit import publish_retained as publish_retained  # fixture

STARTERS = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl"]
people = ["alice@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/other"]
people = ["oscar@example.com"]
""")


@pytest.fixture
def audit() -> tuple[AccessLog, list[AccessEvent]]:
    """An access log and the rows it wrote."""
    rows: list[AccessEvent] = []
    return AccessLog(rows.append), rows


@pytest.fixture
async def http(
    hub: DashboardHub, audit: tuple[AccessLog, list[AccessEvent]]
) -> AsyncIterator[httpx.AsyncClient]:
    """A team's dashboard on ``hub``, its people signed in by the ``x-test-user`` header:
    vera views acme/etl, alice operates it, oscar operates acme/other (``STARTERS``); its
    access audit is ``audit``'s. A test module's own ``http`` takes its place."""
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")
    settings = DashboardSettings(roles=STARTERS, sign_in=sign_in)
    transport = httpx.ASGITransport(app=create_app(hub, settings, access_log=audit[0]))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


Serve = Callable[..., Awaitable[ServingEngine]]


@pytest.fixture
async def serve(broker: InMemoryBroker, hub: DashboardHub) -> AsyncIterator[Serve]:
    """``serve(workflows, source="server-1", **options)``: a started :class:`ServingEngine` of
    ``source`` on ``broker`` (its ``options`` the engine's), announced by the time it returns;
    each stopped after the test."""
    served: list[ServingEngine] = []

    async def start(
        workflows: list[ServedWorkflow], source: str = "server-1", **options: object
    ) -> ServingEngine:
        server = ServingEngine(InMemoryConnector(broker, source_id=source), workflows, **options)  # type: ignore[arg-type]
        await server.connector.connect()
        await server.start()
        await broker.idle()
        served.append(server)
        return server

    yield start
    for server in served:
        await server.stop()
        await server.connector.disconnect()
