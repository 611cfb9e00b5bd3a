"""cascade.control's Controller: steering from Python, as the CLI and the dashboard do it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import ControlError, Controller
from cascade.interfaces import constraint_topic

PAUSE_TOPIC = constraint_topic("task:load_*", "pause")


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def control(broker: InMemoryBroker) -> AsyncIterator[Controller]:
    connector = InMemoryConnector(broker, presence=False)
    await connector.connect(require=True)
    yield Controller(connector, issued_by="alice", timeout=1.0)
    await connector.disconnect()


async def test_a_pause_is_retained_with_who_and_why_and_a_resume_clears_it(
    broker: InMemoryBroker, control: Controller
) -> None:
    steered = await control.pause("task:load_*", ttl=600, reason="maintenance")
    assert steered.topics == (PAUSE_TOPIC,)
    retained = json.loads(broker.retained(PAUSE_TOPIC) or b"{}")
    assert (retained["type"], retained["scope"]) == ("pause", "task:load_*")
    assert (retained["issued_by"], retained["reason"]) == ("alice", "maintenance")
    cleared = await control.resume("task:load_*")
    assert PAUSE_TOPIC in cleared.topics
    assert PAUSE_TOPIC not in broker.retained_topics


async def test_a_resume_first_retains_what_it_clears_expired(
    broker: InMemoryBroker, control: Controller
) -> None:
    """A broker that brings a deleted retained message back (NATS 2.9 after a node restart)
    brings back the expired copy written just before the clear, which every reader drops."""
    await control.pause("task:load_*", reason="maintenance")
    seen: list[bytes] = []
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(PAUSE_TOPIC, lambda message: seen.append(message.raw))
        await broker.idle()
        await control.resume("task:load_*")
        await broker.idle()
    paused, copy, cleared = seen
    expired = json.loads(copy)
    assert expired == {**json.loads(paused), "expires_at": expired["expires_at"]}
    assert expired["expires_at"] <= time.time()
    assert cleared == b""
    assert PAUSE_TOPIC not in broker.retained_topics


async def test_a_pause_and_a_limit_go_under_the_connectors_topic_prefix(
    broker: InMemoryBroker,
) -> None:
    """A deployment of its own prefix is steered there: its pause and limit are retained
    under it (never under the default), and a resume clears them."""
    async with InMemoryConnector(broker, presence=False, topic_prefix="acme") as connector:
        control = Controller(connector, issued_by="alice", timeout=1.0)
        paused = await control.pause("task:load_*")
        limited = await control.limit("task:load_*", concurrency=2, rate="10/m")
        topics = [*paused.topics, *limited.topics]
        assert topics == [
            constraint_topic("task:load_*", kind, "acme")
            for kind in ("pause", "concurrency", "rate_limit")
        ]
        assert set(topics) <= set(broker.retained_topics)
        await control.resume("task:load_*")
    assert not set(topics) & set(broker.retained_topics)


async def test_a_limit_sets_a_concurrency_and_a_rate(
    broker: InMemoryBroker, control: Controller
) -> None:
    steered = await control.limit("global", concurrency=2, rate="10/m")
    assert [c.type for _, c in steered.constraints] == ["concurrency", "rate_limit"]
    assert sorted(broker.retained_topics) == sorted(steered.topics)


@pytest.mark.parametrize(
    ("call", "field", "said"),
    [
        (lambda c: c.pause("global", ttl=0), "ttl", "ttl must be from"),
        (lambda c: c.pause("tasks"), "scope", "unknown scope"),
        (lambda c: c.limit("global", concurrency=-1), "concurrency", "concurrency must be 0"),
        (lambda c: c.limit("global", rate="fast"), "rate", "rate: rate must be"),
        (lambda c: c.limit("global"), "concurrency", "give concurrency, rate or both"),
        (lambda c: c.resume("global", type="stop"), "type", "type must be pause"),
        (lambda c: c.pause("global", reason="a\x1bb"), "reason", "reason holds"),
        (lambda c: c.cancel("abc"), "run_id", "a whole run id"),
        (lambda c: c.resolve_run("xyz"), "run_id", "a run id is hex digits"),
    ],
)
async def test_bad_input_raises_control_error_naming_the_field_and_sends_nothing(
    broker: InMemoryBroker, control: Controller, call: object, field: str, said: str
) -> None:
    with pytest.raises(ControlError) as raised:
        await call(control)  # type: ignore[operator]
    assert raised.value.field == field
    assert str(raised.value).startswith(said)
    assert "--" not in str(raised.value)
    assert broker.retained_topics == []


async def test_a_whole_run_id_resolves_to_itself_at_once(control: Controller) -> None:
    whole = "ab" * 16
    assert await control.resolve_run(whole.upper()) == whole


def test_an_issuer_with_control_characters_is_refused() -> None:
    with pytest.raises(ControlError) as raised:
        Controller(InMemoryConnector(InMemoryBroker()), issued_by="eve\nroot")
    assert raised.value.field == "issued_by"
