"""Every command takes the broker options as flags or CASCADE_MQTT_* variables."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cascade.cli import BrokerOptions, CliContext, app
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
