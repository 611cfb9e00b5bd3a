"""Every command takes the broker options as flags or CASCADE_MQTT_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext, mqtt_connector
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Connector

COMMANDS = [
    ["status"],
    ["pause"],
    ["resume"],
    ["watch", "--duration", "0.01"],
    ["limit", "global", "--concurrency", "1"],
]


@pytest.mark.parametrize("command", COMMANDS)
def test_options_from_flags_and_environment(command: list[str]) -> None:
    """Flags win over CASCADE_MQTT_* variables, which fill in what flags leave out."""
    seen: list[BrokerOptions] = []
    broker = InMemoryBroker()

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(broker, presence=False)

    env = {"CASCADE_MQTT_HOST": "env-host", "CASCADE_MQTT_PORT": "1999",
           "CASCADE_MQTT_USERNAME": "env-user", "CASCADE_MQTT_PASSWORD": "secret"}  # fmt: skip
    args = [*command, "--username", "flag-user", "--timeout", "2"]
    result = CliRunner().invoke(app, args, env=env, obj=CliContext(connector_factory=factory))
    assert result.exit_code == 0, result.output
    assert seen == [BrokerOptions(host="env-host", port=1999, username="flag-user",
                                  password="secret", timeout=2.0)]  # fmt: skip
    assert seen[0].address == "env-host:1999"
    assert seen[0].ssl_context() is None


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--port", "0"], {}), (["--port", "65536"], {}), ([], {"CASCADE_MQTT_PORT": "70000"})],
)
def test_port_out_of_range_is_a_usage_error(args: list[str], env: dict[str, str]) -> None:
    """A port outside 1..65535 exits 2 naming --port, before any connector is made."""
    seen: list[BrokerOptions] = []

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(InMemoryBroker(), presence=False)

    result = CliRunner().invoke(
        app, ["status", *args], env=env, obj=CliContext(connector_factory=factory)
    )
    assert result.exit_code == 2
    assert "--port" in result.output
    assert seen == []


def test_bad_ca_file_fails_in_one_line(tmp_path: Path) -> None:
    """A --ca-file that is no CA bundle exits 1 with a one-line reason, not a traceback."""
    ca_file = tmp_path / "bad.pem"
    ca_file.write_text("not a cert\n")
    args = ["status", "--ca-file", str(ca_file), "--port", "1", "--timeout", "0.5"]
    result = CliRunner().invoke(app, args)  # the real MQTT connector
    assert result.exit_code == 1, result.output
    assert "TLS" in result.output
    assert "bad.pem" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "a:1883,b:1884,[::1]"], {}),
        ([], {"CASCADE_MQTT_HOST": "a:1883, b:1884 ,[::1]"}),
    ],
)
def test_several_nodes_as_a_comma_list(args: list[str], env: dict[str, str]) -> None:
    """`--host a:1883,b:1884` (or CASCADE_MQTT_HOST): the first node, then the others in order;
    an entry without a port gets --port's."""
    seen: list[BrokerOptions] = []

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(InMemoryBroker(), presence=False)

    result = CliRunner().invoke(
        app, ["status", *args], env=env, obj=CliContext(connector_factory=factory)
    )
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert (options.host, options.port) == ("a", 1883)
    assert options.hosts == ("a:1883", "b:1884", "[::1]:1883")
    assert options.address == "a:1883,b:1884,[::1]:1883"
    connector = mqtt_connector(options)
    assert isinstance(connector, MqttConnector)
    assert connector.hosts == options.hosts
    assert (connector.hostname, connector.port) == ("a", 1883)


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("a,,b", "empty entry"),
        ("a,", "empty entry"),
        ("a,a:1883", "names a node twice"),
        ("a,b:0", "must be a number from 1 to 65535"),
        ("a,b c", "not a host name"),
    ],
)
def test_bad_node_lists_are_usage_errors(host: str, words: str) -> None:
    """A bad comma list exits 2 naming --host and what is wrong, before anything is made."""
    seen: list[BrokerOptions] = []

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(InMemoryBroker(), presence=False)

    result = CliRunner().invoke(
        app, ["status", "--host", host], obj=CliContext(connector_factory=factory)
    )
    assert result.exit_code == 2, result.output
    assert "--host" in result.output
    assert words in " ".join(result.output.split())
    assert seen == []


def test_one_host_makes_a_one_node_connector() -> None:
    """Without a comma nothing changes: hostname and port as given."""
    connector = mqtt_connector(BrokerOptions(host="broker", port=1999))
    assert isinstance(connector, MqttConnector)
    assert connector.hosts == ("broker:1999",)


def test_the_clis_connector_reads_no_engines_layout_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``CASCADE_SOURCED_TOPICS`` is an engine's (its connector's layout): a command, which
    publishes no telemetry, neither reads it nor is stopped by a value it cannot read."""
    monkeypatch.setenv("CASCADE_SOURCED_TOPICS", "maybe")
    connector = mqtt_connector(BrokerOptions(host="broker", port=1999))
    assert connector.sourced_topics is False
    result = CliRunner().invoke(app, ["status", "--port", "1", "--timeout", "0.5"])
    assert result.exit_code == 1, result.output  # the broker is not there: nothing else
    assert "CASCADE_SOURCED_TOPICS" not in result.output


class _Refusing(InMemoryConnector):
    async def connect(self, *, require: bool = False) -> None:
        from cascade.interfaces import ConnectorError

        raise ConnectorError("cannot connect:\n\tthe broker said no\n  (try again)")


def test_an_error_of_several_lines_is_said_in_one() -> None:
    """What a library says on several lines ends the command in one (every command's `fail`)."""

    def factory(options: BrokerOptions) -> Connector:
        return _Refusing(InMemoryBroker(), presence=False)

    result = CliRunner().invoke(
        app, ["status", "--timeout", "1"], obj=CliContext(connector_factory=factory)
    )
    assert result.exit_code == 1, result.output
    assert result.stderr == "cascade: cannot connect: the broker said no (try again)\n"


def test_a_password_on_the_command_line_is_warned_of_and_the_variable_is_not() -> None:
    """`--password` works and says on stderr that `ps` shows it, naming the variable that
    does not; $CASCADE_MQTT_PASSWORD says nothing."""
    seen: list[BrokerOptions] = []

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(InMemoryBroker(), presence=False)

    context = CliContext(connector_factory=factory)
    given = CliRunner().invoke(app, ["status", "--password", "s3cret"], obj=context)
    assert given.exit_code == 0, given.output
    assert seen[-1].password == "s3cret"
    assert given.stderr.splitlines()[0] == (
        "cascade: warning: --password on the command line is visible to every user of this "
        "machine (ps, /proc/PID/cmdline); give it in $CASCADE_MQTT_PASSWORD instead"
    )
    quiet = CliRunner().invoke(
        app, ["status"], env={"CASCADE_MQTT_PASSWORD": "s3cret"}, obj=context
    )
    assert quiet.exit_code == 0, quiet.output
    assert seen[-1].password == "s3cret"
    assert "--password" not in quiet.stderr
