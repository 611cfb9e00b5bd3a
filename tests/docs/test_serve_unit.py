"""The systemd unit packages/cascade-cli/README.md shows for `cascade serve`: its ExecStart is a
`cascade serve` command line that the command takes as written (each option one it has, each
value one it accepts), and it stops on the signal the command stops cleanly on."""

from __future__ import annotations

import configparser
import shlex

import typer

from cascade.cli import app

from .examples import ROOT, examples

README = ROOT / "packages" / "cascade-cli" / "README.md"


def _unit() -> configparser.ConfigParser:
    text = README.read_text(encoding="utf-8")
    marker = "<!-- serve-unit:"
    line = text[: text.index(marker)].count("\n") + 2  # the fence is on the next line
    (block,) = [e for e in examples(README) if e.line == line]
    assert block.language == "ini"
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys as written
    unit.read_string(block.code)
    return unit


def test_the_units_execstart_is_a_cascade_serve_the_command_takes() -> None:
    unit = _unit()
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/cascade")
    assert argv[1] == "serve"
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    context = serve.make_context("serve", argv[2:])  # raises on an option it does not have
    assert context.params["workflows"] == "flows.py:workflows"
    assert "--password" not in argv  # `ps` would show it: the environment file has it
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["EnvironmentFile"]
