"""Options that would do harm or break below the command: a keep shorter than a minute asks
for --yes, every number has a range, a malformed database URL is a usage error (exit 2, one
line, before anything is opened)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History
from cascade.interfaces import Connector

_HUGE = "99999999999999999999"


def _in_memory(options: BrokerOptions) -> Connector:
    return InMemoryConnector(InMemoryBroker(), presence=False)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(connector_factory=_in_memory))


def _one_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("option", ["--keep", "--keep-logs"])
@pytest.mark.parametrize("keep", ["0", "0s", "59s", "30s"])
def test_a_keep_shorter_than_a_minute_asks_for_yes(tmp_path: Path, keep: str, option: str) -> None:
    """--keep 0 would delete the whole history in seconds (--keep-logs 0 its logs): without
    --yes it is refused, saying why and how, and no database is opened."""
    db = tmp_path / "h.db"
    result = _invoke("record", "--db", str(db), option, keep, "--duration", "0")
    assert result.exit_code == 2
    line = _one_line(result)
    assert f"'{option}'" in line
    assert "--yes" in line
    assert not db.exists()


def test_a_short_keep_with_yes_records(tmp_path: Path) -> None:
    """With --yes it is meant: it records, keeping that little (a minute or more needs none)."""
    db = tmp_path / "h.db"
    result = _invoke("record", "--db", str(db), "--keep", "0", "--yes", "--duration", "0")
    assert result.exit_code == 0, result.output
    assert "keeping 0" in result.output
    result = _invoke("record", "--db", str(db), "--keep", "60s", "--duration", "0")
    assert result.exit_code == 0, result.output
    result = _invoke("record", "--db", str(db), "--keep-logs", "0", "--yes", "--duration", "0")
    assert result.exit_code == 0, result.output
    assert "task logs 0" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--limit", _HUGE],
        ["audit", "--limit", _HUGE],
        ["record", "--queue", _HUGE, "--duration", "0"],
        ["record", "--duration", "1e300"],
        ["watch", "--count", _HUGE],
        ["watch", "--keep-runs", _HUGE],
        ["watch", "--duration", "1e300"],
    ],
)
def test_numbers_out_of_range_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    """A number beyond its option's range: exit 2 naming the option, never a traceback (an
    OverflowError in SQLite's LIMIT before)."""
    db = tmp_path / "h.db"
    History(db, mode="write").close()
    with_db = [*args, "--db", str(db)] if args[0] in ("runs", "audit", "record") else args
    result = _invoke(*with_db)
    assert result.exit_code == 2, result.output
    assert args[1] in _one_line(result)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://[::1", "port"),
        ("postgresql://db:99999/cascade", "port"),
        ("postgresql://db:abc/cascade", "port"),
    ],
)
@pytest.mark.parametrize("command", ["runs", "audit", "tasks", "record"])
def test_a_malformed_database_url_is_a_usage_error(command: str, url: str, says: str) -> None:
    """A URL whose port cannot be read: exit 2 with one line naming --db and what is wrong
    (exit 1 with "invalid literal for int()" before)."""
    args = ["--duration", "0"] if command == "record" else []
    result = _invoke(command, "--db", url, *args)
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "--db" in line
    assert says in line
    assert "invalid literal" not in line
