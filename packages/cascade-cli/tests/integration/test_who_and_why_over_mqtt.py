"""Who set a constraint, why and until when, over a real broker; and the ACL that decides who
may set one at all."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Constraint
from cascade.runtime import Engine, TaskBlocked, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import (
    MOSQUITTO_ONLY,
    NO_RABBITMQ,
    BrokerEndpoint,
    MosquittoBroker,
    RabbitMQBroker,
    mosquitto_path,
    only_on_family,
    rabbitmq_server_path,
    rabbitmq_user,
    skip_on_family,
)


def cascade(broker: BrokerEndpoint, *args: str, password: str | None = None) -> Result:
    """`cascade ARGS` in-process against ``broker``; ``password`` from the environment, as a
    person gives it (on the command line, `ps` would show it, and the CLI warns)."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "5"]
    env = {} if password is None else {"CASCADE_MQTT_PASSWORD": password}
    return CliRunner().invoke(app, [*args, *address], env=env)


def test_a_reasoned_pause_is_listed_with_who_and_why_and_holds_an_engine(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """`pause --reason --as`: `status --json` lists the fields, and an engine started afterwards
    holds the scope's task under it (the fields change nothing of what it applies)."""
    scope = f"task:{scope_name}"
    paused = cascade(mqtt_broker, "pause", scope, "--ttl", "600", "--reason", "maintenance",
                     "--as", "alice")  # fmt: skip
    assert paused.exit_code == 0, paused.output
    status = cascade(mqtt_broker, "status", "--json")
    assert status.exit_code == 0, status.output
    (listed,) = [c for c in json.loads(status.stdout)["constraints"] if c["scope"] == scope]
    assert (listed["type"], listed["reason"], listed["issued_by"]) == (
        "pause",
        "maintenance",
        "alice",
    )
    assert listed["issued_at"] is not None

    async def held() -> list[Constraint]:
        engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port), heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)

        @task(name=scope_name)
        async def step() -> int:
            return 1

        run = asyncio.create_task(engine.run(step()))
        await recorder.until(lambda: scope_name in recorder.names(TaskBlocked))
        constraints = [c for c in engine.constraints if c.scope == scope]
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        return constraints

    (applied,) = asyncio.run(held())
    assert (applied.type, applied.reason, applied.issued_by) == ("pause", "maintenance", "alice")
    assert cascade(mqtt_broker, "resume", scope).exit_code == 0


# The ACL docs/protocol.md shows: operators may write constraints; anyone else only reads them.
ACL = """
user alice
topic readwrite cascade/constraints/#
topic write cascade/cleared/#
topic read cascade/status/#
topic read cascade/telemetry/#
topic readwrite cascade/_marker/#

user mallory
topic read cascade/constraints/#
topic read cascade/status/#
topic read cascade/telemetry/#
topic readwrite cascade/_marker/#
"""
USERS = {"alice": "alice-pw", "mallory": "mallory-pw"}


@pytest.fixture
def acl_broker() -> MosquittoBroker:
    """A mosquitto of its own with the users and the ACL above."""
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    broker = MosquittoBroker(users=USERS, acl=ACL)
    broker.start()
    return broker


def _as(broker: MosquittoBroker, user: str, *args: str) -> Result:
    return cascade(broker, *args, "--username", user, password=USERS[user])


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
def test_the_acl_decides_who_may_write_constraints(acl_broker: MosquittoBroker) -> None:
    """A user without write access to cascade/constraints/# gets its pause refused (MQTT 5: the
    broker says so), whatever name it claims; an operator's goes through."""
    try:
        refused = _as(
            acl_broker, "mallory", "pause", "task:acl", "--as", "alice", "--protocol", "5"
        )
        assert refused.exit_code == 1, refused.output
        assert "the broker refused 1 of 1 messages" in refused.output
        assert len(refused.output.strip().splitlines()) == 1
        allowed = _as(acl_broker, "alice", "pause", "task:acl", "--protocol", "5")
        assert allowed.exit_code == 0, allowed.output
        assert allowed.output == "paused task:acl by alice\n"
        listed = json.loads(_as(acl_broker, "mallory", "status", "--json").stdout)
        assert [(c["scope"], c["issued_by"]) for c in listed["constraints"]] == [
            ("task:acl", "alice")
        ]
    finally:
        acl_broker.close()


@skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))
def test_under_mqtt_3_1_1_a_denied_pause_cannot_be_told_from_an_accepted_one(
    acl_broker: MosquittoBroker,
) -> None:
    """Why the docs say --protocol 5 under an ACL: with 3.1.1 mosquitto acknowledges the denied
    publish as if it took it, so `pause` exits 0, and nothing was set."""
    try:
        silent = _as(acl_broker, "mallory", "pause", "task:acl311")
        assert silent.exit_code == 0, silent.output
        listed = json.loads(_as(acl_broker, "alice", "status", "--json").stdout)
        assert listed["constraints"] == []
    finally:
        acl_broker.close()


# RabbitMQ's topic permissions, as docs/protocol.md shows them: mallory may write anything on
# amq.topic (where the MQTT plugin publishes) but constraints; MQTT topics are routing keys there
# ('/' as '.'), so the pattern is a routing key's.
RABBITMQ_DEFINITIONS = {
    "users": [
        rabbitmq_user("guest", "guest", "administrator"),
        rabbitmq_user("mallory", USERS["mallory"]),
    ],
    "vhosts": [{"name": "/"}],
    "permissions": [
        {"user": name, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        for name in ("guest", "mallory")
    ],
    "topic_permissions": [
        {"user": "mallory", "vhost": "/", "exchange": "amq.topic",
         "write": r"^(?!cascade\.constraints\.).*", "read": ".*"},
    ],
}  # fmt: skip


@only_on_family("rabbitmq", "it starts a RabbitMQ node of its own")
def test_rabbitmq_permissions_decide_who_may_write_constraints() -> None:
    """RabbitMQ (MQTT 3.1.1 only) closes the connection on a publish its permissions deny:
    mallory's pause is given up after its tries and exits 1 saying so, nothing is set; the
    same pause as guest goes through."""
    if rabbitmq_server_path() is None:
        pytest.skip(NO_RABBITMQ)
    with RabbitMQBroker(definitions=RABBITMQ_DEFINITIONS) as broker:
        refused = _as_on(broker, "mallory", USERS["mallory"], "pause", "task:perm", "--as", "alice")
        assert refused.exit_code == 1, refused.output
        assert "the broker did not take 1 of 1 messages" in refused.output
        listed = json.loads(_as_on(broker, "guest", "guest", "status", "--json").stdout)
        assert listed["constraints"] == []
        allowed = _as_on(broker, "guest", "guest", "pause", "task:perm")
        assert allowed.exit_code == 0, allowed.output
        listed = json.loads(_as_on(broker, "guest", "guest", "status", "--json").stdout)
        assert [(c["scope"], c["issued_by"]) for c in listed["constraints"]] == [
            ("task:perm", "guest")
        ]


def _as_on(broker: BrokerEndpoint, user: str, password: str, *args: str) -> Result:
    return cascade(broker, *args, "--username", user, password=password)
