"""A real mosquitto and a real HTTP receiver for the notifier's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascade.testkit import family_mosquitto_broker  # noqa: F401 - fixture "mosquitto_broker"

from ..receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on a free loopback port that keeps what is posted to it."""
    with Receiver() as server:
        yield server
