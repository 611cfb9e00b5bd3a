"""cascade.control's requests: one per verb, checked where it is made (in Python or from a JSON
body), sent by Controller.send."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

import cascade.control as steering
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import (
    Cancel,
    ControlError,
    Controller,
    Decide,
    Limit,
    Pause,
    Resume,
    Start,
    read_request,
)
from cascade.interfaces import commands, constraint_topic

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def control(broker: InMemoryBroker) -> AsyncIterator[Controller]:
    connector = InMemoryConnector(broker, presence=False)
    await connector.connect(require=True)
    yield Controller(connector, issued_by="alice", timeout=0.2)
    await connector.disconnect()


def test_the_decision_request_and_its_error_are_the_protocols_under_the_same_names() -> None:
    """``cascade.control`` exports the protocol's ``Decide`` and ``ControlError`` again (the
    engine checks with them without this package): one class each, caught as either."""
    assert steering.Decide is commands.Decide
    assert steering.ControlError is commands.ControlError
    with pytest.raises(commands.ControlError):
        Decide(run_id=RUN, task="load", decision="later")  # type: ignore[arg-type]


def test_a_request_keeps_its_fields_as_they_will_be_sent() -> None:
    """A reason stripped, a run id in lower case, a result copied as JSON."""
    assert Pause(scope="task:a", reason=" late ").reason == "late"
    assert Cancel(run_id=RUN.upper()).run_id == RUN
    decided = Decide(run_id=RUN, task=" load ", decision="complete", result=(1, 2))
    assert (decided.task, decided.result) == ("load", [1, 2])
    assert Decide(run_id=RUN, task="load", decision="retry").result is msgspec.UNSET


@pytest.mark.parametrize(
    ("make", "field", "said"),
    [
        (lambda: Pause(ttl=0), "ttl", "ttl must be from"),
        (lambda: Pause(scope="tasks"), "scope", "unknown scope"),
        (lambda: Limit(scope="global"), "concurrency", "give concurrency, rate or both"),
        (lambda: Limit(scope="global", rate="fast"), "rate", "rate: rate must be"),
        (lambda: Resume(type="stop"), "type", "type must be pause"),  # type: ignore[arg-type]
        (lambda: Cancel(run_id="xyz"), "run_id", "a run id is hex digits"),
        (lambda: Cancel(run_id=RUN, reason=""), "reason", "reason is empty"),
        (lambda: Decide(run_id=RUN, task=3, decision="retry"), "task", "task is a held"),  # type: ignore[arg-type]
        (lambda: Decide(run_id=RUN, task="a", decision="later"), "decision", "decision must"),  # type: ignore[arg-type]
        (
            lambda: Start(workflow="nightly", params={"d": object()}),
            "params",
            "params are not JSON",
        ),
        (lambda: Start(workflow="nightly", dry_run=True), "dry_run", "dry_run goes with"),
    ],
)
def test_bad_input_is_refused_where_the_request_is_made(make: Any, field: str, said: str) -> None:
    with pytest.raises(ControlError) as refused:
        make()
    assert refused.value.field == field
    assert str(refused.value).startswith(said)


@pytest.mark.parametrize(
    ("body", "field", "said"),
    [
        ([1], "body", "the body must be a JSON object"),
        ({"scope": "global", "colour": "red"}, "body", "unknown fields: colour (give scope,"),
        ({"scope": 3}, "scope", "scope must be a string"),
        ({"ttl": "soon"}, "ttl", "ttl must be a number of seconds, not 'soon'"),
        ({"reason": 5}, "reason", "reason must be text, not 5"),
    ],
)
def test_a_body_is_refused_in_the_words_of_the_requests_checks(
    body: Any, field: str, said: str
) -> None:
    with pytest.raises(ControlError) as refused:
        read_request(Pause, body)
    assert refused.value.field == field
    assert str(refused.value).startswith(said)


def test_a_body_gives_what_its_address_does_not() -> None:
    """The run and the task of the address are the request's; the body may not give them."""
    asked = read_request(Decide, {"decision": "retry", "attempt": 2}, run_id=RUN, task="load")
    assert (asked.run_id, asked.task, asked.decision, asked.attempt) == (RUN, "load", "retry", 2)
    with pytest.raises(ControlError, match="unknown fields: run_id"):
        read_request(Decide, {"decision": "retry", "run_id": RUN}, run_id=RUN, task="load")
    with pytest.raises(ControlError, match="decision is missing") as missing:
        read_request(Decide, {}, run_id=RUN, task="load")
    assert missing.value.field == "decision"
    assert read_request(Cancel, None, run_id=RUN) == Cancel(run_id=RUN)
    with pytest.raises(ControlError, match="dry_run: Expected `bool`"):
        read_request(Start, {"dry_run": "yes", "rerun_of": "58a887"}, workflow="nightly")


async def test_send_sets_what_a_pause_asks_issued_by_the_controller(
    broker: InMemoryBroker, control: Controller
) -> None:
    steered = await control.send(Pause(scope="task:load_*", reason="maintenance"))
    topic = constraint_topic("task:load_*", "pause")
    assert steered.topics == (topic,)
    retained = json.loads(broker.retained(topic) or b"{}")
    assert (retained["issued_by"], retained["reason"]) == ("alice", "maintenance")
    cleared = await control.send(Resume(scope="task:load_*", type="pause"))
    assert cleared.topics == (topic,)
    assert topic not in broker.retained_topics


async def test_only_a_whole_run_id_is_sent(broker: InMemoryBroker, control: Controller) -> None:
    """A prefix is a request a face resolves first: sending one sends nothing."""
    seen: list[str] = []
    async with InMemoryConnector(broker, presence=False) as spy:
        await spy.subscribe("#", lambda message: seen.append(message.topic))
        for asked in (Cancel(run_id="58a887"), Decide(run_id="58a887", task="a", decision="skip")):
            with pytest.raises(ControlError, match="a whole run id") as refused:
                await control.send(asked)
            assert refused.value.field == "run_id"
        await broker.idle()
    assert seen == []
