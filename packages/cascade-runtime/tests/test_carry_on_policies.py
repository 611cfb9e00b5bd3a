"""``Engine.serve(on_engine_lost=..., max_carry_ons=...)``: what a server does with a dead
server's runs is checked before anything starts (the scenarios themselves are fault tests:
tests/faults/test_carry_on.py kills real servers on every broker family)."""

from __future__ import annotations

from typing import Any

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryConnector


@cs.task
def load() -> int:
    return 1


def _etl() -> cs.LazyResult[int]:
    return load()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"on_engine_lost": "sometimes"}, "on_engine_lost for etl is 'sometimes'"),
        ({"on_engine_lost": {"report": "hold"}}, "names workflows not served: report"),
        ({"on_engine_lost": {"etl": "later"}}, "on_engine_lost for etl is 'later'"),
        ({"max_carry_ons": -1}, "max_carry_ons must be at least 0"),
    ],
    ids=["no policy", "a workflow not served", "a bad one for one", "a negative budget"],
)
async def test_a_policy_it_cannot_follow_is_refused_before_anything_starts(
    options: dict[str, Any], said: str
) -> None:
    connector = InMemoryConnector(presence=False)
    with pytest.raises(ValueError, match=said):
        await cs.Engine(connector).serve({"etl": _etl}, **options)
    assert not connector.is_connected
