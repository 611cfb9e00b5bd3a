"""The public names are the ones the README's "Public API" lists: the two cannot drift apart."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MODULES = ["cascade.cli", "cascade.cli.dashboard"]


def documented() -> dict[str, list[str]]:
    """The names under each ``### `module``` heading of the README's "Public API" section."""
    section = README.read_text(encoding="utf-8").split("\n## Public API\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    names: dict[str, list[str]] = {}
    module = ""
    for line in section.splitlines():
        if heading := re.fullmatch(r"### `([\w.]+)`", line):
            module = heading[1]
            names[module] = []
        elif item := re.match(r"- `(\w+)`", line):
            names[module].append(item[1])
    return names


def test_the_readme_documents_each_public_module() -> None:
    """Every public module has its list, and no name is listed twice."""
    lists = documented()
    assert sorted(lists) == sorted(MODULES)
    for names in lists.values():
        assert len(names) == len(set(names))


@pytest.mark.parametrize("module", MODULES)
def test_all_is_the_documented_list(module: str) -> None:
    """A module's ``__all__`` is exactly the names its README list gives."""
    assert sorted(importlib.import_module(module).__all__) == sorted(documented()[module])


@pytest.mark.parametrize("module", MODULES)
def test_every_documented_name_imports(module: str) -> None:
    """``from module import name`` works for each listed name."""
    imported = importlib.import_module(module)
    for name in documented()[module]:
        assert getattr(imported, name) is not None, name
