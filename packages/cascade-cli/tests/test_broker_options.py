"""Every command takes the broker options as flags or CASCADE_MQTT_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.interfaces import Connector
from cascade.interfaces.testing import InMemoryBroker, InMemoryConnector

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
