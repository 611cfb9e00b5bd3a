"""The integration tests: the history's tests again on a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascade.testkit import (  # noqa: F401 - fixtures
    PrivatePostgreSQL,
    family_mqtt_broker,  # "mqtt_broker", of the family CASCADE_TEST_BROKER names: one a session
    new_database,
    own_postgresql,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PrivatePostgreSQL]:
    """A private PostgreSQL for the session (skipped, saying why, where it is not installed)."""
    yield from own_postgresql()


@pytest.fixture
def database_url(postgresql: PrivatePostgreSQL) -> Iterator[str]:
    """A new database of the private cluster for each test (dropped after it)."""
    yield from new_database(postgresql)
