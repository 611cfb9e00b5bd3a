"""pause, limit, resume and the dashboard's controls on a broker that sends retained messages only
to exact subscriptions: what the constraints index does not keep is an error that names it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from typer.testing import Result

from cascade.cli.plumbing import BrokerOptions
from cascade.connector_kit import _index_writer as index_writer
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import Connector, Payload, constraint_topic


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_writer, "SETTLE", 0.01)


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker(retained_to_wildcards=False)


class Overwritten(InMemoryConnector):
    """A writer each of whose writes of an index shard another writer's stale copy (an empty
    shard) replaces at once."""

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        await super().publish(topic, payload, qos, retain)
        if topic.startswith(f"{self.topic_prefix}/index/constraints/"):
            await super().publish(topic, b"", 1, True)


def overwritten(broker: InMemoryBroker) -> Callable[[BrokerOptions], Connector]:
    return lambda options: Overwritten(broker, presence=False)


def test_a_pause_the_index_keeps_exits_0_and_holds(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    assert invoke("pause", "task:x").exit_code == 0
    status = invoke("status", "--json")
    assert [c["scope"] for c in json.loads(status.stdout)["constraints"]] == ["task:x"]


def test_a_pause_the_index_does_not_keep_exits_1_naming_it(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    result = invoke("pause", "task:x", connector_factory=overwritten(broker))
    assert result.exit_code == 1
    assert "did not keep pause on task:x (task/x/pause)" in result.stderr
    assert "running engines have it" in result.stderr


def test_a_limit_the_index_does_not_keep_names_each_type(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    args = ("limit", "task:db", "--concurrency", "2", "--rate", "1/s")
    result = invoke(*args, connector_factory=overwritten(broker))
    assert result.exit_code == 1
    assert "concurrency on task:db (task/db/concurrency)" in result.stderr
    assert "rate_limit on task:db (task/db/rate_limit)" in result.stderr


def test_a_resume_the_index_does_not_keep_exits_1_naming_it(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    assert invoke("pause", "task:x").exit_code == 0
    result = invoke("resume", "task:x", connector_factory=overwritten(broker))
    assert result.exit_code == 1
    assert "did not keep the clear of pause on task:x (task/x/pause)" in result.stderr


async def test_the_dashboard_answers_503_naming_what_did_not_take(broker: InMemoryBroker) -> None:
    hub = DashboardHub(Overwritten(broker, presence=False), timeout=2.0)
    await hub.start()
    try:
        transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token="t")))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answer = await client.post(
                "/api/constraints",
                json={"scope": "task:x", "type": "pause"},
                headers={"Authorization": "Bearer t"},
            )
    finally:
        await hub.stop()
    assert answer.status_code == 503
    assert "did not keep pause on task:x" in answer.json()["error"]
    assert broker.retained(constraint_topic("task:x", "pause")) is not None  # live, as said
