"""The README's table of commands names every command `cascade --help` lists."""

from __future__ import annotations

import re

import typer.core
import typer.main

from cascade.cli import app

from .examples import ROOT


def _table_commands() -> set[str]:
    """The command names in the first column of the README's command table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        first_cell = re.split(r"(?<!\\)\|", row)[1]
        for usage in re.findall(r"`([^`]+)`", first_cell):
            words = usage.removeprefix("cascade ").split()
            names.update(words[0].split("\\|"))
    return names


def test_every_command_is_in_the_readme_table() -> None:
    """A command missing from the table is one a reader of the README never finds."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    assert set(group.commands) - _table_commands() == set()
