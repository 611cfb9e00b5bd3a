"""What a command imports to start: a command that only says something (`--help`,
`--version`) loads nothing of the broker, the history, the dashboard or the reader model, and
one that talks to the broker loads nothing of the history, the dashboard or the engine (issue
66: every command ready to talk to the broker within 0.25 s of CPU). A test of what is
imported, not of time: the bench (`benchmarks/bench_startup.py`) measures the time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What no command needs before it works: the extras' stacks and the engine.
EXTRAS = (
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
    "opentelemetry",
    "cascade.dashboard",
    "cascade.history",
    "cascade.notify",
    "cascade.metrics",
    "cascade.runtime",
)
# What talking to the broker needs, and the views' model: not for a command's help.
BROKER = (
    "asyncio",
    "ssl",
    "aiomqtt",
    "paho",
    "msgspec",
    "cascade.connectors",
    "cascade.reader._model",
    "cascade.interfaces._schemas",
)
# Steering: what `pause` and the like need, and nothing that only reads.
STEERING = ("cascade.interfaces._requests",)
SAID = (
    "import atexit, sys\n"
    "atexit.register(lambda: print(' '.join(sorted(sys.modules)), file=sys.stderr))\n"
    "sys.argv = ['cascade', *sys.argv[1:]]\n"
    "from cascade.cli import main\n"
    "main()\n"
)


def _imported(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``cascade ARGS`` in a fresh interpreter, as the console script runs it, and the modules
    it had imported when it ended."""
    result = subprocess.run(
        [sys.executable, "-c", SAID, *args],
        env={**os.environ, "COLUMNS": "100", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, set(result.stderr.strip().splitlines()[-1].split())


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["status", "--help"],
        ["logs", "--help"],
        ["watch", "--help"],
        ["pause", "--help"],
    ],
)
def test_saying_what_a_command_does_loads_nothing_heavy(args: list[str]) -> None:
    """`cascade --help`, `cascade status --help` ... import neither an extra, nor the broker's
    client, nor the wire's schemas, nor the reader model."""
    result, modules = _imported(*args)
    assert result.returncode == 0, result.stderr
    assert _loaded(modules, EXTRAS + BROKER + STEERING) == []


def test_the_heavy_lists_name_what_a_command_that_works_loads() -> None:
    """The names above are modules the commands do load when they work (a list of names
    nothing imports would make the test above pass whatever is imported): `cascade status`
    toward a port nobody listens on loads the broker's client before it fails, and no
    steering; `cascade pause` loads the steering."""
    result, modules = _imported("status", "--host", "127.0.0.1:9", "--timeout", "0.5")
    assert result.returncode == 1, result.stderr
    assert _loaded(modules, BROKER) == list(BROKER)
    assert _loaded(modules, EXTRAS + STEERING) == []
    result, modules = _imported("pause", "--host", "127.0.0.1:9", "--timeout", "0.5")
    assert result.returncode == 1, result.stderr
    assert _loaded(modules, STEERING) == list(STEERING)
    assert _loaded(modules, EXTRAS) == []


def test_following_logs_without_a_history_loads_none(tmp_path: Path) -> None:
    """`cascade logs RUN -f` looks for the default history before it follows: where there is
    none, it loads no database (it loaded SQLAlchemy and Alembic to find the path)."""
    run = "0123456789abcdef0123456789abcdef"
    args = ("logs", run, "-f", "--host", "127.0.0.1:9", "--timeout", "0.5")
    result, modules = _imported(*args, XDG_DATA_HOME=str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert _loaded(modules, EXTRAS + STEERING) == ["cascade.history"]  # its default path only
    assert "sqlalchemy" not in _loaded(modules, ("sqlalchemy",))


def test_a_history_command_loads_the_history_only_when_it_runs() -> None:
    """`cascade runs --help` loads no history; `cascade runs` does (the extras list is one a
    command can trip)."""
    result, modules = _imported("runs", "--help")
    assert result.returncode == 0, result.stderr
    assert _loaded(modules, ("cascade.history", "sqlalchemy")) == []
    result, modules = _imported("runs", "--db", "sqlite:///:memory:")
    assert _loaded(modules, ("cascade.history",)) == ["cascade.history"], result.stderr


def test_the_listing_is_plain_text() -> None:
    """`cascade --help` lists the commands in click's plain text (the whole app's too: the
    listing says what it says): typer's framed help imports rich's markdown, syntax and
    traceback renderers, half of what the listing cost (issue 93); a command's own help is
    framed as before."""
    result, modules = _imported("--help")
    assert result.returncode == 0, result.stderr
    assert _loaded(modules, ("rich",)) == []
    assert "Commands:\n  status " in result.stdout
    result, modules = _imported("pause", "--help")
    assert result.returncode == 0, result.stderr
    assert _loaded(modules, ("rich",)) == ["rich"]
