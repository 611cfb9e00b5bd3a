"""The rate forms and the initial burst that packages/cascade-cli/README.md documents."""

from __future__ import annotations

import json
import math

import pytest

from cascade.interfaces import Constraint, Message, constraint_topic, encode_payload
from cascade.runtime import ConstraintManager


class FrozenClock:
    def __call__(self) -> float:
        return 1_000.0


def _limited(rate: str) -> ConstraintManager:
    manager = ConstraintManager(monotonic=FrozenClock())
    constraint = Constraint.rate_limit("global", rate)
    raw = encode_payload(constraint)
    topic = constraint_topic("global", "rate_limit")
    manager.handle_message(Message(topic=topic, payload=json.loads(raw), raw=raw))
    return manager


@pytest.mark.parametrize(
    ("rate", "burst", "interval"),
    [("10", 10, 0.1), ("10/s", 10, 0.1), ("10 / s", 10, 0.1), ("10/m", 1, 6.0), ("2/h", 1, 1800.0)],
)
def test_a_rate_limit_starts_with_a_burst_of_max_1_rate(
    rate: str, burst: int, interval: float
) -> None:
    """`--rate R` lets max(1, R per second) tasks start at once, then one every 1/R seconds."""
    manager = _limited(rate)
    assert [manager.admit("t") for _ in range(burst)] == [None] * burst
    assert manager.admit("t") == pytest.approx(interval)


def test_concurrency_0_starts_nothing_of_the_scope() -> None:
    """`--concurrency 0`: no task of the scope starts (like a pause); others do."""
    manager = ConstraintManager()
    constraint = Constraint.concurrency("task:w*", 0)
    raw = encode_payload(constraint)
    manager.handle_message(
        Message(topic=constraint_topic("task:w*", "concurrency"), payload=json.loads(raw), raw=raw)
    )
    assert manager.admit("w1") == math.inf
    assert manager.admit("other") is None
