"""`--help` shows flags as flags, every command's summary whole, and `--version` works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app

COMMANDS = ["status", "pause", "resume", "limit", "watch", "demo", "record"]
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value(command: str) -> None:
    """A flag is listed as `--json`, never `--json <bool>` (as typer 0.29 prints them)."""
    text = _help(command)
    assert "<bool>" not in text
    assert re.search(r"--tls\s+Connect with TLS", text), text


def test_the_top_level_help_lists_every_command_in_one_line() -> None:
    """Each command's summary is one whole sentence on its own line."""
    text = _help()
    assert "<bool>" not in text
    for command in COMMANDS:
        line = next(line for line in text.splitlines() if re.match(rf"  {command}\s", line))
        summary = line.split(command, 1)[1].strip()
        assert summary.endswith("."), line
    assert "Run a sample workflow and watch it live." in text


@pytest.mark.parametrize("group", [[], ["history"], ["token"], ["session"]])
def test_each_summary_is_one_line_at_80_columns(group: list[str]) -> None:
    """`cascade --help` (and each command group's) lists every command on one line of an
    80-column terminal, its summary a whole sentence; the long text is the command's own.
    (In a process of its own: typer reads the help's width once per process.)"""
    result = subprocess.run(
        [sys.executable, "-m", "cascade.cli", *group, "--help"],
        env={**os.environ, "COLUMNS": "80", "TERMINAL_WIDTH": "80"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    if not group:  # the listing, in click's plain text (test_start_imports says why)
        start = lines.index("Commands:")
        rows = [line for line in lines[start + 1 :] if line.strip()]
        first = r"  [a-z]+ +\S"
    else:
        start = next(i for i, line in enumerate(lines) if line.startswith("╭─ Commands"))
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
        rows = lines[start + 1 : end]
        first = r"│ [a-z]+ +\S"
    assert len(rows) >= 2, result.stdout
    for row in rows:
        assert re.match(first, row), result.stdout  # no line continues the one above
        assert row.rstrip(" │").endswith("."), row


def test_a_commands_help_flows_its_paragraphs() -> None:
    """A docstring's line breaks are not the terminal's: `cascade audit --help` flows each
    paragraph to the width (typer kept them: "and what a" ended a line at 80 columns)."""
    text = CliRunner().invoke(app, ["audit", "--help"], env=WIDE).output
    assert "and what a team's dashboard refused, newest first: when, scope" in text
    lines = [line.strip() for line in text.splitlines()]
    assert "Constraints, starts, cancels, decisions, posts, newest first." in lines


def test_a_flag_takes_no_value() -> None:
    """`--json true` is refused as an extra argument: flags are switched on by their name alone."""
    result = CliRunner().invoke(app, ["status", "--json", "true"])
    assert result.exit_code == 2


def test_version_names_every_package() -> None:
    """`cascade --version` prints the version of the CLI and of each package it runs on."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("cascade ")
    for package in (
        "cascade-runtime",
        "cascade-connector-mqtt",
        "cascade-client",
        "cascade-connector-kit",
        "cascade-interfaces",
        "cascade-history",
    ):
        assert package in result.output


@pytest.mark.parametrize("extra_module", ["prometheus_client", "starlette", "cascade.history"])
def test_the_plain_cli_needs_no_extra(extra_module: str) -> None:
    """`pip install cascade-cli` without extras: `cascade --version` works (each extra's module
    blocked in a fresh interpreter, as a missing one would be)."""
    script = (
        f"import sys; sys.modules[{extra_module!r}] = None\n"
        "from typer.testing import CliRunner\n"
        "from cascade.cli import app\n"
        "result = CliRunner().invoke(app, ['--version'])\n"
        "assert result.exit_code == 0, result.output\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


RECORD_COUNTERS = ("stored", "duplicates", "rejected", "refused", "dropped", "gaps", "lag")


def test_record_explains_each_counter_it_shows() -> None:
    """`record`'s progress line and summary name counters: --help and the README say what each
    one means (a quiet broker's "duplicates" puzzled a new user)."""
    shown = CliRunner().invoke(app, ["record", "--help"], env={"COLUMNS": "100"}).output
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    documented = readme.split("## What `cascade record` counts", 1)[1].split("\n## ", 1)[0]
    for counter in RECORD_COUNTERS:
        assert f"{counter}:" in shown, counter
        assert f"**{counter}**:" in documented, counter
