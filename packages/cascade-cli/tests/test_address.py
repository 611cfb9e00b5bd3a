"""`--host host:port` (and CASCADE_MQTT_HOST=host:port) name the port; a conflict exits 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.cli.plumbing._address import split_host_port
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Connector


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("broker.example", ("broker.example", None)),
        ("127.0.0.1:18901", ("127.0.0.1", 18901)),
        ("[::1]:1884", ("::1", 1884)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
    ],
)
def test_split_host_port(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(value) == expected


@pytest.mark.parametrize(
    "value", ["host:", "host:x", "host:0", "host:65536", ":1883", "[::1", "[::1]x"]
)
def test_split_host_port_refuses(value: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        split_host_port(value)


def _invoke(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[int, str, list[BrokerOptions]]:
    seen: list[BrokerOptions] = []
    broker = InMemoryBroker()

    def factory(options: BrokerOptions) -> Connector:
        seen.append(options)
        return InMemoryConnector(broker, presence=False)

    result = CliRunner().invoke(
        app, ["status", *args], env=env or {}, obj=CliContext(connector_factory=factory)
    )
    return result.exit_code, result.output, seen


@pytest.mark.parametrize(
    ("args", "env", "address"),
    [
        (["--host", "127.0.0.1:18901"], {}, ("127.0.0.1", 18901)),
        (["--host", "127.0.0.1:18901", "--port", "18901"], {}, ("127.0.0.1", 18901)),
        ([], {"CASCADE_MQTT_HOST": "h:18902"}, ("h", 18902)),
        # a flag beats a variable, whichever names the port
        (["--host", "h:18903"], {"CASCADE_MQTT_PORT": "1"}, ("h", 18903)),
        (["--port", "18904"], {"CASCADE_MQTT_HOST": "h:1"}, ("h", 18904)),
    ],
)
def test_host_with_port(args: list[str], env: dict[str, str], address: tuple[str, int]) -> None:
    code, output, seen = _invoke(args, env)
    assert code == 0, output
    assert (seen[0].host, seen[0].port) == address


def test_two_ports_at_once_exit_2_with_a_hint() -> None:
    """`--host h:P --port Q` names two ports: exit 2 before anything is sent, with a hint."""
    code, output, seen = _invoke(["--host", "127.0.0.1:18901", "--port", "1883"])
    assert code == 2
    assert seen == []
    assert "give the port once" in " ".join(output.split())


def test_a_bad_port_in_host_exits_2() -> None:
    code, output, seen = _invoke(["--host", "127.0.0.1:x"])
    assert code == 2
    assert seen == []
    assert "--host" in output
