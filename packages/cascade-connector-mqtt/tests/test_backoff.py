"""Reconnection delays: exponential, jittered, bounded, and reset only by a stable connection.

Each delay is drawn with ``random.uniform(low, high)``: the tests record the bounds of every
draw (and draw ``low``, so that the connector only waits milliseconds).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import pytest

from cascade.connectors.mqtt import ConnectRefusedError, MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import ConnectError


def _unreachable(count: int) -> list[ConnectError]:
    """What ``count`` attempts raise when nothing listens on the broker's port."""
    return [ConnectError("broker", 1883, "connection refused") for _ in range(count)]


def _recording_draws(
    monkeypatch: pytest.MonkeyPatch, draw: Callable[[float, float], float] = min
) -> list[tuple[float, float]]:
    """Record the bounds of every reconnection delay drawn by connectors made after this."""
    draws: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        draws.append((low, high))
        return draw(low, high)

    monkeypatch.setattr(random, "uniform", record)
    return draws


async def test_the_first_retry_comes_within_the_initial_delay(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default a failed attempt is retried after 0.05 to 0.1 s (backoff_initial)."""
    draws = _recording_draws(monkeypatch)
    broker.fail_next(*_unreachable(1))
    connector = MqttConnector("broker", link=broker)
    await connector.connect()
    assert await connector.wait_connected(5)
    assert draws == [(0.05, 0.1)]
    await connector.disconnect()


async def test_delays_double_in_their_upper_half_up_to_backoff_max(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each delay is drawn from [bound/2, bound]; the bound doubles per attempt, up to the cap."""
    draws = _recording_draws(monkeypatch)
    broker.fail_next(*_unreachable(7))
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.016, link=broker)
    await connector.connect()
    assert await connector.wait_connected(5)
    bounds = [0.001, 0.002, 0.004, 0.008, 0.016, 0.016, 0.016]
    assert [high for _, high in draws] == pytest.approx(bounds)
    assert [low for low, _ in draws] == pytest.approx([bound / 2 for bound in bounds])
    await connector.disconnect()


async def test_a_refusal_waits_at_the_cap_and_a_new_connect_starts_over(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused CONNACK waits backoff_max (retrying soon cannot fix it); connect() after
    disconnect() starts from backoff_initial again."""
    draws = _recording_draws(monkeypatch)
    broker.fail_next(ConnectRefusedError("broker", 1883, "not authorised"))
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.01, link=broker)
    await connector.connect()
    assert await connector.wait_connected(5)
    assert draws == [(0.005, 0.01)]
    await connector.disconnect()  # up for less than backoff_max: that reset nothing
    draws.clear()
    broker.fail_next(*_unreachable(1))
    await connector.connect()
    assert await connector.wait_connected(5)
    assert draws == [(0.0005, 0.001)]
    await connector.disconnect()


async def test_a_thousand_failed_attempts_still_wait_the_capped_delay(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound stops doubling at the cap: 2 ** attempts would overflow a float by then."""
    draws = _recording_draws(monkeypatch, draw=lambda low, high: 0.0)
    broker.fail_next(*_unreachable(1100))
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.002, link=broker)
    await connector.connect()
    assert await connector.wait_connected(10)  # a supervisor that died never connects
    assert len(draws) == 1100
    assert draws[-1] == (0.001, 0.002)
    await connector.disconnect()


@pytest.mark.parametrize(("initial", "maximum"), [(0, 1), (-1, 1), (2, 1)])
def test_bad_bounds_are_refused(initial: float, maximum: float) -> None:
    """backoff_initial must be positive and not above backoff_max."""
    with pytest.raises(ValueError, match="backoff"):
        MqttConnector("broker", backoff_initial=initial, backoff_max=maximum)


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


async def test_connections_dropped_right_after_connack_back_off(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that drops each accepted connection at once sees ever later retries, one warning."""
    entered = _dropped_after_connack(broker, drops=4)
    draws = _recording_draws(monkeypatch)
    connector = MqttConnector(
        "broker", client_id="shared", backoff_initial=0.001, backoff_max=60, link=broker
    )
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        for _ in range(5):
            await entered.get()
        assert await connector.wait_connected(5)
    assert [high for _, high in draws] == pytest.approx([0.001, 0.002, 0.004, 0.008])
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
    draws = _recording_draws(monkeypatch)
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.05, link=broker)
    await connector.connect()
    for _ in range(3):
        await entered.get()
    assert await connector.wait_connected(5)
    await asyncio.sleep(0.1)  # what is tested: the connection stays up longer than backoff_max
    broker.link.lose()
    await entered.get()
    assert [high for _, high in draws] == pytest.approx([0.001, 0.002, 0.001])
    await connector.disconnect()
