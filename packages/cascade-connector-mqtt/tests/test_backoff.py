"""Reconnection delays: exponential, jittered, bounded, and reset only by a stable connection."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._backoff import Backoff
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink


def test_first_retry_is_well_under_a_second() -> None:
    """The first delay is at most the initial delay (0.1 s by default)."""
    assert all(0.05 <= Backoff().next_delay() <= 0.1 for _ in range(100))


def test_delays_grow_then_stay_at_the_cap() -> None:
    """Upper bounds double each attempt until the maximum, never beyond."""
    backoff = Backoff(0.1, 2.0, rand=lambda low, high: high)
    assert [backoff.next_delay() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_jitter_spans_the_upper_half() -> None:
    """Each delay is drawn from [bound/2, bound]."""
    bounds: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        bounds.append((low, high))
        return low

    backoff = Backoff(1.0, 8.0, rand=record)
    backoff.next_delay()
    backoff.next_delay()
    assert bounds == [(0.5, 1.0), (1.0, 2.0)]


def test_capped_delay_is_at_the_maximum_and_reset_starts_over() -> None:
    """Refusals wait at the cap; a success resets to the initial delay."""
    backoff = Backoff(0.1, 30.0)
    assert all(15.0 <= backoff.capped_delay() <= 30.0 for _ in range(20))
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_many_attempts_do_not_overflow() -> None:
    """Thousands of failed attempts still give the capped delay."""
    backoff = Backoff(0.1, 5.0, rand=lambda low, high: high)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 5.0


def test_bad_bounds_are_refused() -> None:
    """The initial delay must be positive and not above the maximum."""
    with pytest.raises(ValueError, match="backoff"):
        Backoff(0, 1)
    with pytest.raises(ValueError, match="backoff"):
        Backoff(2, 1)


def _dropped_after_connack(broker: FakeBroker, drops: int) -> asyncio.Queue[FakeLink]:
    """Make the broker accept the first ``drops`` connections and drop each at once.

    Returns a queue that gets every link as it connects.
    """
    entered: asyncio.Queue[FakeLink] = asyncio.Queue()

    async def accepted(link: FakeLink) -> None:
        entered.put_nowait(link)
        if len(broker.links) <= drops:  # dropped on the loop turn after its CONNACK
            asyncio.get_running_loop().call_soon(link.lose)

    broker.before_connack = accepted
    return entered


def _recording_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the upper bound of every reconnection delay drawn by connectors made after this."""
    bounds: list[float] = []

    def record(low: float, high: float) -> float:
        bounds.append(high)
        return low

    monkeypatch.setattr(random, "uniform", record)
    return bounds


async def test_connections_dropped_right_after_connack_back_off(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that drops each accepted connection at once sees ever later retries, one warning."""
    entered = _dropped_after_connack(broker, drops=4)
    bounds = _recording_backoff(monkeypatch)
    connector = MqttConnector(
        "broker", client_id="shared", backoff_initial=0.001, backoff_max=60, link=broker
    )
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        for _ in range(5):
            await entered.get()
        assert await connector.wait_connected(5)
    assert bounds == pytest.approx([0.001, 0.002, 0.004, 0.008])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # the first loss, then the pattern (rate-limited)
    assert "same client id" not in warnings[0]
    assert "closed 2 connections in a row" in warnings[1]
    assert "same client id" in warnings[1]
    await connector.disconnect()


async def test_one_short_connection_guesses_no_cause(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection lost once soon after its CONNACK (a broker killed) names no guessed cause."""
    entered = _dropped_after_connack(broker, drops=1)
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=60, link=broker)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        for _ in range(2):
            await entered.get()
        assert await connector.wait_connected(5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "ended" in warnings[0]
    assert "client id" not in warnings[0]
    assert "ACL" not in warnings[0]
    await connector.disconnect()


async def test_a_connection_that_stayed_up_starts_the_backoff_again(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lost after staying up for backoff_max, a connection is retried after the initial delay."""
    entered = _dropped_after_connack(broker, drops=2)
    bounds = _recording_backoff(monkeypatch)
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.05, link=broker)
    await connector.connect()
    for _ in range(3):
        await entered.get()
    assert await connector.wait_connected(5)
    await asyncio.sleep(0.1)  # what is tested: the connection stays up longer than backoff_max
    broker.link.lose()
    await entered.get()
    assert bounds == pytest.approx([0.001, 0.002, 0.001])
    await connector.disconnect()
