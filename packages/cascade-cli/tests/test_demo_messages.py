"""The demo says what it does: the pause it announces lasts as long as it says."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from rich.console import Console

from cascade.cli.commands.demo import _demo
from cascade.cli.plumbing import BrokerOptions
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.interfaces import CascadeError, Message, constraint_topic, decode_constraint
from cascade.reader import ReaderModel, RunView


async def test_pause_expires_when_the_demo_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "paused task:transform for Ns": the retained pause expires N seconds after it was sent."""
    monkeypatch.setattr(_demo, "PAUSE_SECONDS", 1.0)  # the shortest --ttl (MIN_TTL)
    broker = InMemoryBroker()
    state = ReaderModel()
    state.runs["r"] = RunView("r", "o", "p", "s")
    out = io.StringIO()
    console = Console(file=out, width=200)
    seen: list[Message] = []
    async with InMemoryConnector(broker, presence=False) as control:
        await control.subscribe(constraint_topic("task:transform", "pause"), seen.append)
        sent = time.time()
        steering = Controller(control, issued_by=_demo.DEMO_OPERATOR)
        await _demo.steer(steering, state, asyncio.Event(), console)
        await broker.idle()
    pause = decode_constraint(seen[0].payload)
    assert pause.expires_at is not None
    assert pause.expires_at - sent == pytest.approx(1.0, abs=0.1)
    assert pause.issued_by == "cascade demo"  # through the Controller, as `cascade pause` sends
    assert "paused task:transform for 1s" in out.getvalue()
    assert "resumed task:transform" in out.getvalue()
    assert seen[-1].payload == {}


async def test_last_screen_waits_for_the_clears() -> None:
    """The demo's last screen is drawn once the view has heard its limits cleared."""
    topic = constraint_topic("task:api_*", "rate_limit")
    state = ReaderModel()
    state.apply(Message(topic, {"id": "r", "scope": "task:api_*", "type": "rate_limit",
                                "params": {"rate": "2/s"}}))  # fmt: skip
    changed = asyncio.Event()

    async def clear_later() -> None:
        await asyncio.sleep(0.05)
        state.apply(Message(constraint_topic("global", "pause"), {}))
        changed.set()
        await asyncio.sleep(0.05)
        state.apply(Message(topic, {}))
        changed.set()

    clearing = asyncio.create_task(clear_later())
    await _demo.cleared(state, changed, [topic], 5.0)
    assert topic not in state.constraints
    await clearing


@pytest.mark.parametrize(("variable", "sourced"), [(None, False), ("1", True), ("off", False)])
def test_the_demo_engine_takes_the_layout_an_engine_would(
    variable: str | None, sourced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo engine's connector is on the layout ``CASCADE_SOURCED_TOPICS`` asks for."""
    monkeypatch.delenv("CASCADE_SOURCED_TOPICS", raising=False)
    if variable is not None:
        monkeypatch.setenv("CASCADE_SOURCED_TOPICS", variable)
    assert _demo.demo_engine_connector(BrokerOptions()).sourced_topics is sourced


def test_a_layout_variable_the_demo_cannot_read_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value ends the demo as bad input does (exit 2, saying what), not a traceback."""
    monkeypatch.setenv("CASCADE_SOURCED_TOPICS", "maybe")
    with pytest.raises(CascadeError, match="CASCADE_SOURCED_TOPICS"):  # the CLI says it
        _demo.demo_engine_connector(BrokerOptions())
