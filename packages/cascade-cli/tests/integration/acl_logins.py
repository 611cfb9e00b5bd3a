"""Brokers under an ACL and the logins of its roles on them: the set-up the CLI's ACL tests share
(the ACL `cascade acl` generates from a roles file, or one docs/acl/ ships). Every login's
password is :func:`password`'s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine
from cascade.runtime.testing import EventRecorder
from cascade.testkit import (
    NO_RABBITMQ,
    MosquittoBroker,
    NatsNode,
    RabbitMQBroker,
    mosquitto_path,
    rabbitmq_server_path,
    rabbitmq_user,
)

__all__ = [
    "Logins",
    "acl_mosquitto",
    "acl_rabbitmq",
    "generated_acl",
    "password",
    "passwords",
    "refused",
]


def password(user: str) -> str:
    """``user``'s password on the tests' brokers."""
    return f"{user}-pw"


def passwords(users: Iterable[str]) -> dict[str, str]:
    """Each of ``users`` with its :func:`password`: a broker's password file."""
    return {user: password(user) for user in users}


def generated_acl(roles: str, tmp_path: Path, broker: str) -> str:
    """What `cascade acl ROLES --BROKER -o FILE` wrote, ``roles`` the roles file's text."""
    roles_file, out = tmp_path / "roles.toml", tmp_path / f"acl-{broker}.out"
    roles_file.write_text(roles, encoding="utf-8")
    result = CliRunner().invoke(app, ["acl", str(roles_file), f"--{broker}", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


@contextmanager
def acl_mosquitto(acl: str, users: Iterable[str]) -> Iterator[MosquittoBroker]:
    """A mosquitto of its own with ``acl`` as its acl_file and ``users``' logins (the test
    skipped where mosquitto is not installed), closed after."""
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    broker = MosquittoBroker(users=passwords(users), acl=acl)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@contextmanager
def acl_rabbitmq(
    definitions: dict[str, Any] | str, users: Iterable[str]
) -> Iterator[RabbitMQBroker]:
    """A RabbitMQ node of its own loaded with ``definitions`` (their JSON text, or as read),
    ``users``' logins and an administrator ``guest`` added beside them (created separately,
    as the docs say); the test skipped where RabbitMQ is not installed."""
    if rabbitmq_server_path() is None:
        pytest.skip(NO_RABBITMQ)
    loaded: dict[str, Any] = (
        json.loads(definitions) if isinstance(definitions, str) else definitions
    )
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    loaded = {
        **loaded,
        "users": [rabbitmq_user("guest", "guest", "administrator")]
        + [rabbitmq_user(user, secret) for user, secret in passwords(users).items()],
        "permissions": [*loaded["permissions"], {"user": "guest", "vhost": "/", **everything}],
    }
    with RabbitMQBroker(definitions=loaded) as broker:
        yield broker


def refused(result: Result) -> None:
    """MQTT 5 (mosquitto) says the broker refused it; RabbitMQ closed the connection each time."""
    assert result.exit_code == 1, result.output
    assert (
        "the broker refused 1 of 1 messages" in result.output
        or "the broker did not take 1 of 1 messages" in result.output
    ), result.output


class Logins:
    """The roles' logins on one broker, with its protocol (MQTT 5 on mosquitto: refusals said)."""

    def __init__(self, broker: MosquittoBroker | RabbitMQBroker | NatsNode) -> None:
        self.broker = broker
        self.protocol = "5" if broker.supports_mqtt5 else "3.1.1"

    def connector(
        self,
        user: str,
        *,
        presence: bool = False,
        source: str | None = None,
        sourced_topics: bool = False,
    ) -> MqttConnector:
        """A connector logged in as ``user``, its source ``source`` (``user`` by default)."""
        return MqttConnector(
            self.broker.host,
            self.broker.port,
            username=user,
            password=password(user),
            source_id=source or user,
            protocol=self.protocol,
            presence=presence,
            sourced_topics=sourced_topics,
            backoff_initial=0.01,  # RabbitMQ closes the connection on each denied message
            backoff_max=0.1,
        )

    @asynccontextmanager
    async def login(self, user: str, source: str | None = None) -> AsyncIterator[MqttConnector]:
        """:meth:`connector`, connected (the broker took the login) for the block."""
        connector = self.connector(user, source=source)
        await connector.connect(require=True)
        try:
            yield connector
        finally:
            await connector.disconnect()

    def engine(
        self, org: str, project: str, *, presence: bool = False
    ) -> tuple[Engine, EventRecorder]:
        """An engine logged in as ``engine-1`` (on the sourced topics the ACL binds to it) in
        ``org``/``project``, and what it emits."""
        connector = self.connector("engine-1", presence=presence, sourced_topics=True)
        engine = Engine(connector, org_id=org, project_id=project, heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        return engine, recorder

    def cascade(self, user: str, *args: str) -> Result:
        """`cascade ARGS` in-process, logged in as ``user``."""
        address = ["--host", self.broker.host, "--port", str(self.broker.port), "--timeout", "10"]
        login = ["--username", user, "--protocol", self.protocol]
        secret = {"CASCADE_MQTT_PASSWORD": password(user)}  # as the docs say: never in ps
        return CliRunner().invoke(app, [*args, *address, *login], env=secret)

    async def run(self, user: str, *args: str) -> Result:
        """:meth:`cascade`, in a thread (the test's loop runs on)."""
        return await asyncio.to_thread(self.cascade, user, *args)

    async def done(self, user: str, *args: str) -> str:
        """What `cascade ARGS` printed, as ``user``; it exited 0."""
        result = await self.run(user, *args)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    async def refused(self, user: str, *args: str) -> None:
        """`cascade ARGS` as ``user``, refused by the broker (:func:`refused`)."""
        refused(await self.run(user, *args))
