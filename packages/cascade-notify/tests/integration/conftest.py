"""A real mosquitto, a real HTTP receiver and (where installed) a private PostgreSQL for the
notifier's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascade.testkit import (
    PrivatePostgreSQL,
    WebhookReceiver,
    family_mosquitto_broker,  # noqa: F401 - fixture "mosquitto_broker"
    new_database,
    own_postgresql,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """An HTTP server on a free loopback port that keeps what is posted to it."""
    with WebhookReceiver() as server:
        yield server


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PrivatePostgreSQL]:
    """A private PostgreSQL for the session (skipped, saying why, where it is not installed)."""
    yield from own_postgresql()


@pytest.fixture
def postgresql_url(postgresql: PrivatePostgreSQL) -> Iterator[str]:
    """A new database of the private cluster for the test (dropped after it)."""
    yield from new_database(postgresql)
