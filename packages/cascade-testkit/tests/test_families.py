"""Broker families in the test support: picking one, marking tests, a private RabbitMQ's set-up."""

from __future__ import annotations

import pytest

from cascade.testkit import (
    BROKER_FAMILY_VARIABLE,
    NO_RABBITMQ,
    RabbitMQBroker,
    broker_family,
    rabbitmq_server_path,
    skip_on_family,
    xfail_on_family,
)


def test_mosquitto_is_the_default_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CASCADE_TEST_BROKER (or with it empty) the family is mosquitto."""
    monkeypatch.delenv(BROKER_FAMILY_VARIABLE, raising=False)
    assert broker_family() == "mosquitto"
    monkeypatch.setenv(BROKER_FAMILY_VARIABLE, " ")
    assert broker_family() == "mosquitto"


def test_the_family_is_read_case_blind(monkeypatch: pytest.MonkeyPatch) -> None:
    """CASCADE_TEST_BROKER=RabbitMQ picks the rabbitmq family."""
    monkeypatch.setenv(BROKER_FAMILY_VARIABLE, "RabbitMQ")
    assert broker_family() == "rabbitmq"


def test_an_unknown_family_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A family nobody knows stops the run with the variable and the choices in the message."""
    monkeypatch.setenv(BROKER_FAMILY_VARIABLE, "hivemq")
    with pytest.raises(pytest.UsageError, match=r"CASCADE_TEST_BROKER='hivemq'.*mosquitto"):
        broker_family()


def test_marks_apply_only_on_their_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """skip_on_family and xfail_on_family hold on the named family only; xfail is strict."""
    monkeypatch.setenv(BROKER_FAMILY_VARIABLE, "rabbitmq")
    skip = skip_on_family("rabbitmq", "why")
    xfail = xfail_on_family("rabbitmq", "why")
    assert skip.args == (True,)
    assert skip.kwargs["reason"] == "rabbitmq: why"
    assert xfail.args == (True,)
    assert xfail.kwargs["strict"] is True
    monkeypatch.setenv(BROKER_FAMILY_VARIABLE, "mosquitto")
    assert skip_on_family("rabbitmq", "why").args == (False,)
    assert xfail_on_family("rabbitmq", "why").args == (False,)


@pytest.fixture
def unstarted_rabbitmq() -> RabbitMQBroker:
    if rabbitmq_server_path() is None:
        pytest.skip(NO_RABBITMQ)
    return RabbitMQBroker()


def test_a_rabbitmq_node_shares_nothing_with_the_system(unstarted_rabbitmq: RabbitMQBroker) -> None:
    """Its own node name, loopback ports, files and cookie home; never the system's 5672."""
    broker = unstarted_rabbitmq
    try:
        env = broker.environment()
        directory = str(broker.directory)
        assert broker.node_name.startswith("cascade-test-")
        assert env["RABBITMQ_NODENAME"] == broker.node_name
        assert len({broker.port, broker.amqp_port, broker.dist_port}) == 3
        assert 5672 not in {broker.port, broker.amqp_port, broker.dist_port}
        assert env["RABBITMQ_DIST_PORT"] == str(broker.dist_port)
        assert env["HOME"] == directory
        for name in (
            "RABBITMQ_CONF_ENV_FILE",
            "RABBITMQ_CONFIG_FILE",
            "RABBITMQ_ENABLED_PLUGINS_FILE",
            "RABBITMQ_MNESIA_BASE",
            "RABBITMQ_LOG_BASE",
            "RABBITMQ_PID_FILE",
        ):
            assert env[name].startswith(directory), name
        config = broker.config_path.read_text()
        assert f"listeners.tcp.local = 127.0.0.1:{broker.amqp_port}" in config
        assert f"mqtt.listeners.tcp.local = 127.0.0.1:{broker.port}" in config
        assert "management" not in (broker.directory / "enabled_plugins").read_text()
        other = RabbitMQBroker()
        other.close()
        assert other.node_name != broker.node_name
    finally:
        broker.close()
