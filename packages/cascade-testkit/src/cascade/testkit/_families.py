"""Broker families as a test dimension: the same integration tests against mosquitto, RabbitMQ
or NATS.

``CASCADE_TEST_BROKER`` (``mosquitto``, the default, ``rabbitmq`` or ``nats``)
picks the family of the shared ``mqtt_broker``. A conftest takes the fixtures
from here instead of the plain ones::

    from cascade.testkit import (  # noqa: F401 - fixtures
        family_mosquitto_broker,  # "mosquitto_broker"
        family_mqtt_broker,  # "mqtt_broker"
    )

and tests mark what a family cannot do: :func:`skip_on_family` for a
feature the family lacks (the test would not mean anything there),
:func:`xfail_on_family` for a real difference in behaviour (strict: the
day the broker or Cascade changes, the test passes and says so).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ._fixtures import BrokerEndpoint, local_broker, own_mosquitto
from ._mosquitto import MosquittoBroker
from ._nats import NO_NATS, NatsCluster, NatsNode, nats_server_path
from ._rabbitmq import NO_RABBITMQ, RabbitMQBroker, rabbitmq_server_path

__all__ = [
    "BROKER_FAMILIES",
    "BROKER_FAMILY_VARIABLE",
    "MOSQUITTO_ONLY",
    "NOT_THE_SHARED_BROKER",
    "NO_MQTT5",
    "NO_QOS2_PUBLISH",
    "NO_SHARED_SUBSCRIPTIONS",
    "QOS_ORDER_NOT_KEPT",
    "RETAINED_EXACT_ONLY",
    "RETAINED_EXACT_ONLY_HANGS",
    "STAR_TOPIC_REWRITTEN",
    "OwnBroker",
    "broker_family",
    "family_mosquitto_broker",
    "family_mqtt_broker",
    "family_mqtt_tls_broker",
    "family_own_broker",
    "skip_on_family",
    "xfail_on_family",
]

BROKER_FAMILY_VARIABLE = "CASCADE_TEST_BROKER"
BROKER_FAMILIES = ("mosquitto", "rabbitmq", "nats")

MOSQUITTO_ONLY = (
    "needs a mosquitto of its own (stopped, hung with SIGSTOP, restarted, or configured with "
    "password, ACL or TLS files); the {family} family runs the tests of the shared broker"
)


# Differences of RabbitMQ 3.x's MQTT plugin, measured in the tests/brokers suite.
RETAINED_EXACT_ONLY = (
    "sends a retained message only to subscriptions of its exact topic, never through a '+' or "
    "'#' filter, so `cascade status`/`watch` miss retained statuses ({prefix}/status/+), and "
    "engines and readers miss the retained constraints that no writer listed in the "
    "constraints index (those other tools retain)"
)
RETAINED_EXACT_ONLY_HANGS = (
    RETAINED_EXACT_ONLY + "; the test waits for one without a deadline of its own, so it would "
    "hang until pytest's timeout instead of failing"
)
STAR_TOPIC_REWRITTEN = (
    "maps each MQTT topic to an AMQP routing key and back, so a '*' in a topic arrives as '+' "
    "(and a '.' as '/'): a limit or pause on task:api_* reaches subscribers on "
    "{prefix}/constraints/task/api_+/..., a topic name with a wildcard, which the connector "
    "rejects (counted in stats.rejected; the connection stays): the limit never applies"
)
QOS_ORDER_NOT_KEPT = (
    "does not keep one publisher's QoS 0 and QoS 1 messages in order (each level keeps its "
    "own, also at a QoS 0 subscription, as Cascade's clean sessions make), so a QoS 1 "
    "ENGINE_STARTED may arrive after the QoS 0 task states that followed it; "
    "the test asserts that order, so it fails there at random, neither pass nor xfail"
)
# What NATS 2.9's MQTT listener (and RabbitMQ 3.x's plugin) lacks, measured in the
# tests/brokers suite: a test that needs one of these means nothing there.
NO_MQTT5 = (
    "speaks MQTT 3.1.1 only: an MQTT 5 CONNECT is refused, so nothing here that needs MQTT 5 "
    "(session expiry, message expiry, user properties) can connect"
)
NO_QOS2_PUBLISH = (
    "takes no QoS 2 publish (the connection is closed); Cascade publishes at QoS 0 and 1 only, "
    "so only a test that sends QoS 2 itself needs it"
)
NO_SHARED_SUBSCRIPTIONS = (
    "has no shared subscriptions: '$share/...' is no group there, so requests on the shared "
    "topic reach no server and two recorders cannot share one stream (each is told so)"
)
NOT_THE_SHARED_BROKER = (
    "does not use the shared broker (an embedded broker, a mosquitto of its own, or none); "
    "the mosquitto session runs it"
)


def broker_family() -> str:
    """The broker family the integration tests run against, from ``CASCADE_TEST_BROKER``."""
    family = os.environ.get(BROKER_FAMILY_VARIABLE, "").strip().lower() or "mosquitto"
    if family not in BROKER_FAMILIES:
        raise pytest.UsageError(
            f"{BROKER_FAMILY_VARIABLE}={family!r}: expected one of {', '.join(BROKER_FAMILIES)}"
        )
    return family


def skip_on_family(family: str, reason: str) -> pytest.MarkDecorator:
    """Skip the test when the tests run on ``family``: it needs something that family lacks."""
    return pytest.mark.skipif(broker_family() == family, reason=f"{family}: {reason}")


def only_on_family(family: str, reason: str) -> pytest.MarkDecorator:
    """Run the test only when the tests run on ``family`` (one session of that family runs it,
    not every other family's too): ``reason`` says why."""
    current = broker_family()
    return pytest.mark.skipif(
        current != family, reason=f"{current}: only the {family} session runs it: {reason}"
    )


def xfail_on_family(
    family: str, reason: str, *, raises: type[BaseException] | None = None
) -> pytest.MarkDecorator:
    """Expect the test to fail on ``family`` (strictly: a pass there is reported as a failure)."""
    return pytest.mark.xfail(
        broker_family() == family, reason=f"{family}: {reason}", raises=raises, strict=True
    )


@pytest.fixture(scope="session", name="mqtt_broker")
def family_mqtt_broker() -> Iterator[BrokerEndpoint]:
    """The session's shared broker, of the family ``CASCADE_TEST_BROKER`` names.

    ``mosquitto`` (the default) is the plain ``mqtt_broker``: a private
    mosquitto, or the embedded broker where mosquitto is not installed.
    ``rabbitmq`` is a private RabbitMQ node with its MQTT plugin (skipped
    where ``rabbitmq-server`` is not installed). ``nats`` is a private
    three-node NATS JetStream cluster (:class:`NatsCluster`; its ``host`` and
    ``port`` are node ``a``'s; skipped where ``nats-server`` is not installed).
    Registered as ``mqtt_broker``.
    """
    family = broker_family()
    if family == "rabbitmq":
        yield from _rabbitmq_node()
        return
    if family == "nats":
        if nats_server_path() is None:
            pytest.skip(NO_NATS)
        with NatsCluster() as cluster:
            yield cluster
        return
    yield from local_broker()


def _rabbitmq_node() -> Iterator[RabbitMQBroker]:
    """A private RabbitMQ node while the caller runs (skipped where it is not installed)."""
    if rabbitmq_server_path() is None:
        pytest.skip(NO_RABBITMQ)
    with RabbitMQBroker() as rabbit:
        yield rabbit


OwnBroker = MosquittoBroker | RabbitMQBroker | NatsNode
"""A broker of the family for one test: each has host, port, stop, kill, restart, pause and
resume (and start, close)."""


@pytest.fixture(name="own_broker")
def family_own_broker(request: pytest.FixtureRequest) -> Iterator[OwnBroker]:
    """A broker for one test, of the family ``CASCADE_TEST_BROKER`` names, free to stop, hang
    (SIGSTOP), resume and restart: a private mosquitto of its own (skipped where mosquitto is
    not installed), or the session's private RabbitMQ node (skipped where ``rabbitmq-server``
    is not installed), which boots in seconds: one serves every test, and is resumed or
    started again after each one that hung or stopped it. Its retained messages outlive a
    test: use a topic prefix of the test's own. On ``nats``, a private single
    :class:`NatsNode` of its own (it starts in well under a second)."""
    family = broker_family()
    if family == "nats":
        if nats_server_path() is None:
            pytest.skip(NO_NATS)
        with NatsNode() as own:
            yield own
        return
    if family != "rabbitmq":
        yield from own_mosquitto()
        return
    node = request.config.stash.get(_SESSION_NODE, None)
    if node is None:
        if rabbitmq_server_path() is None:
            pytest.skip(NO_RABBITMQ)
        node = RabbitMQBroker()
        request.config.add_cleanup(node.close)
        request.config.stash[_SESSION_NODE] = node
    node.start()  # boots the first time; again after a test that stopped it
    yield node
    node.resume()


_SESSION_NODE = pytest.StashKey[RabbitMQBroker]()


@pytest.fixture(name="mosquitto_broker")
def family_mosquitto_broker() -> Iterator[MosquittoBroker]:
    """The plain ``mosquitto_broker`` (one per test), skipped unless the family is mosquitto."""
    _mosquitto_family_only()
    yield from own_mosquitto()


@pytest.fixture(name="mqtt_tls_broker")
def family_mqtt_tls_broker() -> Iterator[MosquittoBroker]:
    """The plain ``mqtt_tls_broker`` (user ``cascade``/``secret``), skipped off mosquitto."""
    _mosquitto_family_only()
    yield from own_mosquitto(tls=True, users={"cascade": "secret"})


def _mosquitto_family_only() -> None:
    family = broker_family()
    if family != "mosquitto":
        pytest.skip(MOSQUITTO_ONLY.format(family=family))
