"""How a command ends on an error Cascade raised: one table (EXITS), and every command under it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing._exits import EXITS, FAILURE, USAGE, EndsOnErrors, Exit, exit_of
from cascade.control import ControlError, StartTimeoutError
from cascade.history import HistoryError, LocationError
from cascade.interfaces import CascadeError, ConnectError, InvalidMessageError


def test_each_error_the_table_names_is_a_cascade_error_where_it_says() -> None:
    for name in EXITS:
        module, _, attribute = name.rpartition(".")
        kind = getattr(importlib.import_module(module), attribute)
        assert isinstance(kind, type), name
        assert issubclass(kind, CascadeError), name


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    if hasattr(command, "commands"):  # a group (of click, or of the click typer ships)
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")
    else:
        yield path, command


def test_every_command_of_the_app_ends_on_errors_as_the_table_says() -> None:
    commands = dict(_commands(get_command(app), "cascade"))
    assert "cascade history migrate" in commands  # a group's commands too
    assert {path for path, command in commands.items() if not isinstance(command, EndsOnErrors)} \
        == set()  # fmt: skip


def test_an_error_ends_as_its_most_specific_type_named() -> None:
    assert exit_of(LocationError("bad url")) == Exit(USAGE, "--db")  # a HistoryError
    assert exit_of(HistoryError("locked")) == Exit(FAILURE)
    assert exit_of(StartTimeoutError("no answer", "nightly", ())) == Exit(FAILURE)  # a StartError
    assert exit_of(ConnectError("localhost", 1, "refused")) == Exit(FAILURE)  # a ConnectorError


def test_an_error_the_table_does_not_name_ends_nothing() -> None:
    assert exit_of(InvalidMessageError("not the protocol")) is None
    assert exit_of(KeyError("a bug")) is None


def _tiny_app() -> typer.Typer:
    """An app whose group is `cascade`'s (its usage errors in one line), with a command that
    raises what it is told to."""
    errors: dict[str, Exception] = {
        "control": ControlError("ttl must be at least 1 second", "ttl"),
        "db": LocationError("the URL has an unclosed bracket"),
        "broker": ConnectError("localhost", 1, "connection refused"),
        "unnamed": InvalidMessageError("not the protocol"),
    }
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    tiny = typer.Typer(cls=type(group), pretty_exceptions_enable=False)

    @tiny.command(cls=EndsOnErrors)
    def fail_with(error: str) -> None:
        raise errors[error]

    @tiny.command(cls=EndsOnErrors)
    def other() -> None:
        """A second command: the app is a group, as `cascade` is."""

    return tiny


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        ("control", 2, "cascade fail-with: invalid value: --ttl must be at least 1 second "
                       "(see cascade fail-with --help)"),
        ("db", 2, "cascade fail-with: invalid value for '--db': the URL has an unclosed bracket "
                  "(see cascade fail-with --help)"),
        ("broker", 1, "cascade: cannot connect to MQTT broker at localhost:1: connection refused"),
    ],
)  # fmt: skip
def test_a_command_ends_on_a_named_error_in_one_line(error: str, code: int, said: str) -> None:
    result = CliRunner().invoke(_tiny_app(), ["fail-with", error], prog_name="cascade")
    assert result.exit_code == code
    assert result.output.strip() == said


def test_a_command_lets_an_error_the_table_does_not_name_through() -> None:
    result = CliRunner().invoke(_tiny_app(), ["fail-with", "unnamed"], prog_name="cascade")
    assert isinstance(result.exception, InvalidMessageError)
