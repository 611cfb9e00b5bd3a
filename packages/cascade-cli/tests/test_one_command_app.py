"""The console script builds the app of the command asked for alone (a third of a command's
start was importing every other command), and lists them all without importing any: what it
says must be what the whole app says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer.main

from cascade.cli import app

NAMES = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
ENV = {**os.environ, "COLUMNS": "100", "TERMINAL_WIDTH": "100"}
WHOLE = "import sys; from cascade.cli import app; app(prog_name='cascade')"


def _cascade(
    *args: str, whole: bool = False, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[str]:
    command = ["-c", WHOLE] if whole else ["-m", "cascade.cli"]
    return subprocess.run(
        [sys.executable, *command, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_every_command_is_listed() -> None:
    assert {"status", "pause", "dashboard", "record", "history", "token", "session"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_command_alone_says_what_the_whole_app_says(name: str) -> None:
    """Its help, and a usage error (one line, exit 2), are the whole app's to the byte."""
    for args in ([name, "--help"], [name, "--no-such-option"]):
        alone, whole = _cascade(*args), _cascade(*args, whole=True)
        assert (alone.returncode, alone.stdout, alone.stderr) == (
            whole.returncode,
            whole.stdout,
            whole.stderr,
        ), args
        assert alone.returncode in (0, 2), alone.stderr


@pytest.mark.parametrize("columns", ["80", "250"])
@pytest.mark.parametrize("args", [[], ["--help"], ["sta"], ["--version"], ["--help", "status"]])
def test_the_listing_of_every_command_says_what_the_whole_app_says(
    args: list[str], columns: str
) -> None:
    """`cascade --help` (and `cascade` alone, a mistyped name with its suggestions,
    `--version`) lists each command by the summary the registry keeps of it: the whole app's
    to the byte, each summary whole on a wide terminal."""
    env = {**os.environ, "COLUMNS": columns, "TERMINAL_WIDTH": columns}
    listed, whole = _cascade(*args, env=env), _cascade(*args, whole=True, env=env)
    assert (listed.returncode, listed.stdout, listed.stderr) == (
        whole.returncode,
        whole.stdout,
        whole.stderr,
    ), args


def test_the_listing_imports_no_command() -> None:
    """`cascade --help` loads no command's module."""
    said = (
        "import atexit, sys; atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m.startswith('cascade.cli.commands.')), file=sys.stderr));"
        " sys.argv = ['cascade', '--help']; from cascade.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", said], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_a_command_imports_no_other_command() -> None:
    """`cascade status` loads the status command's module and none of the others'."""
    said = (
        "import atexit, sys; atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m.startswith('cascade.cli.commands.')), file=sys.stderr));"
        " sys.argv = ['cascade', 'status', '--help']; from cascade.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", said], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "['cascade.cli.commands.status']"
