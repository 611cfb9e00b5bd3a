"""The integration tests: the history's tests again on a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascade.testkit import NO_POSTGRESQL, PrivatePostgreSQL, postgresql_bin

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PrivatePostgreSQL]:
    """A private PostgreSQL for the session (skipped, saying why, where it is not installed)."""
    bin_dir = postgresql_bin()
    if bin_dir is None:
        pytest.skip(NO_POSTGRESQL)
    with PrivatePostgreSQL(bin_dir) as server:
        yield server


@pytest.fixture
def database_url(postgresql: PrivatePostgreSQL) -> Iterator[str]:
    """A new database of the private cluster for each test (dropped after it)."""
    name = postgresql.create_database()
    yield postgresql.url(name)
    postgresql.drop_database(name)
