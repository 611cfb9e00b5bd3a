"""Each package's public names are the ones its README's "Public API" lists: they cannot drift."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2] / "packages"
# Each package's public modules, as its README lists them.
MODULES = {
    "cascade-interfaces": [
        "cascade.interfaces",
        "cascade.interfaces.commands",
        "cascade.interfaces.serving",
        "cascade.interfaces.logs",
        "cascade.interfaces.graphs",
        "cascade.interfaces.summaries",
        "cascade.interfaces.notes",
        "cascade.interfaces.wire",
        "cascade.interfaces.lazy",
    ],
    "cascade-connector-kit": [
        "cascade.connector_kit",
        "cascade.connector_kit.constraints_index",
        "cascade.connector_kit.testing",
    ],
    "cascade-client": [
        "cascade.reader",
        "cascade.control",
        "cascade.control.access",
        "cascade.control.run_ids",
        "cascade.control.checks",
        "cascade.control.schedules",
        "cascade.metrics",
    ],
    "cascade-connector-mqtt": ["cascade.connectors.mqtt", "cascade.connectors.mqtt.testing"],
    "cascade-runtime": ["cascade.runtime", "cascade.runtime.testing"],
    "cascade-history": ["cascade.history"],
    "cascade-notify": ["cascade.notify"],
    "cascade-cli": [
        "cascade.cli",
        "cascade.cli.access",
        "cascade.cli.plumbing",
        "cascade.cli.rendering",
    ],
    "cascade-dashboard": [
        "cascade.dashboard",
        "cascade.dashboard.app",
        "cascade.dashboard.auth",
        "cascade.dashboard.history",
        "cascade.dashboard.live",
    ],
    "cascade-testkit": ["cascade.testkit"],  # not published; its list is kept all the same
}
EVERY_MODULE = [(package, module) for package, modules in MODULES.items() for module in modules]


def documented(package: str) -> dict[str, list[str]]:
    """The names under each ``### `module``` heading of the README's "Public API" section."""
    readme = (PACKAGES / package / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Public API\n", 1)[1].split("\n## ", 1)[0]
    names: dict[str, list[str]] = {}
    module = ""
    for line in section.splitlines():
        if heading := re.fullmatch(r"### `([\w.]+)`", line):
            module = heading[1]
            names[module] = []
        elif item := re.match(r"- `(\w+)`", line):
            names[module].append(item[1])
    return names


@pytest.mark.parametrize("package", MODULES)
def test_the_readme_documents_each_public_module(package: str) -> None:
    """Every public module has its list, and no name is listed twice."""
    lists = documented(package)
    assert sorted(lists) == sorted(MODULES[package])
    for names in lists.values():
        assert len(names) == len(set(names))


@pytest.mark.parametrize(("package", "module"), EVERY_MODULE)
def test_all_is_the_documented_list(package: str, module: str) -> None:
    """A module's ``__all__`` is exactly the names its README list gives."""
    assert sorted(importlib.import_module(module).__all__) == sorted(documented(package)[module])


@pytest.mark.parametrize(("package", "module"), EVERY_MODULE)
def test_every_documented_name_imports(package: str, module: str) -> None:
    """``from module import name`` works for each listed name."""
    imported = importlib.import_module(module)
    for name in documented(package)[module]:
        assert getattr(imported, name) is not None, name
