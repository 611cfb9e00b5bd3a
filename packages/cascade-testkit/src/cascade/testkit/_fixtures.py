"""pytest fixtures that give integration tests a real broker over TCP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from ._mosquitto import MosquittoBroker, mosquitto_path
from ._postgres import NO_POSTGRESQL, PrivatePostgreSQL, postgresql_bin
from ._threaded import ThreadedEmbeddedBroker

__all__ = [
    "BrokerEndpoint",
    "mosquitto_broker",
    "mqtt_broker",
    "mqtt_tls_broker",
    "new_database",
    "own_postgresql",
]

NO_MOSQUITTO = "mosquitto is not installed (the embedded amqtt broker cannot do this)"


class BrokerEndpoint(Protocol):
    """What the broker fixtures yield: where it listens and what it can do."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def is_mosquitto(self) -> bool: ...

    @property
    def supports_mqtt5(self) -> bool: ...


def local_broker() -> Iterator[BrokerEndpoint]:
    """A private mosquitto, or the embedded broker where mosquitto is not installed."""
    if mosquitto_path() is not None:
        with MosquittoBroker() as broker:
            yield broker
        return
    embedded = ThreadedEmbeddedBroker()
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def own_mosquitto(**options: Any) -> Iterator[MosquittoBroker]:
    """A private mosquitto made with ``options``; skips the test where mosquitto is missing."""
    if mosquitto_path() is None:
        pytest.skip(NO_MOSQUITTO)
    with MosquittoBroker(**options) as broker:
        yield broker


def own_postgresql() -> Iterator[PrivatePostgreSQL]:
    """A private PostgreSQL for a fixture of any scope (``yield from own_postgresql()``);
    skips the test, saying why, where PostgreSQL is not installed."""
    bin_dir = postgresql_bin()
    if bin_dir is None:
        pytest.skip(NO_POSTGRESQL)
    with PrivatePostgreSQL(bin_dir) as server:
        yield server


def new_database(server: PrivatePostgreSQL) -> Iterator[str]:
    """A new database of ``server`` for a fixture (``yield from new_database(server)``): its
    SQLAlchemy URL, dropped after."""
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[BrokerEndpoint]:
    """A broker shared by the session: a private mosquitto, or the embedded broker without one.

    Shared, so tests must use unique topics and must not stop or hang it
    (use ``mosquitto_broker`` for that). Skip what needs MQTT 5 with
    ``if not mqtt_broker.supports_mqtt5: pytest.skip(...)``.
    """
    yield from local_broker()


@pytest.fixture
def mosquitto_broker() -> Iterator[MosquittoBroker]:
    """A private mosquitto for one test, free to stop, pause (SIGSTOP), resume and restart.

    Skips the test where mosquitto is not installed.
    """
    yield from own_mosquitto()


@pytest.fixture
def mqtt_tls_broker() -> Iterator[MosquittoBroker]:
    """A private mosquitto with a TLS listener (test CA in ``.certificates``) and one user.

    The user is ``cascade`` with password ``secret``; anonymous access is off.
    Skips the test where mosquitto is not installed.
    """
    yield from own_mosquitto(tls=True, users={"cascade": "secret"})
