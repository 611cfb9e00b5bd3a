"""A real mosquitto, a real HTTP receiver and (where installed) a private PostgreSQL for the
notifier's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascade.testkit import (
    ForwardProxy,
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


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the environment the tests run in: each test sets those it is about."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    """An HTTP proxy (proxy.py) on a free loopback port, in a process of its own."""
    with ForwardProxy() as server:
        yield server


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PrivatePostgreSQL]:
    """A private PostgreSQL for the session (skipped, saying why, where it is not installed)."""
    yield from own_postgresql()


@pytest.fixture
def postgresql_url(postgresql: PrivatePostgreSQL) -> Iterator[str]:
    """A new database of the private cluster for the test (dropped after it)."""
    yield from new_database(postgresql)
