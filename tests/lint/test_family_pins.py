"""The family is versioned together: every package pins each package of the repository it
depends on to the minor it is released with, so that the engine side of the protocol
(``cascade.interfaces.wire``, which may change in any minor version) is the one it was built
against."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli before 3.11")

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = sorted((ROOT / "packages").glob("*/pyproject.toml"))
FAMILY = {tomllib.loads(path.read_text(encoding="utf-8"))["project"]["name"] for path in PROJECTS}
REQUIREMENT = re.compile(r"(?P<name>[a-z0-9-]+)(?:\[[^\]]*\])?\s*(?P<pins>.*)")


def _pins(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """A package's version, and each (package of the family, its pins) among its requirements
    and its extras'."""
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    found = []
    for requirement in requirements:
        match = REQUIREMENT.fullmatch(requirement.strip())
        if match and match["name"] in FAMILY and match["name"] != project["name"]:
            found.append((match["name"], match["pins"].replace(" ", "")))
    return project["version"], found


def test_the_family_is_found() -> None:
    """The walk finds the packages (an empty walk would check nothing)."""
    assert {"cascade-interfaces", "cascade-runtime", "cascade-client"} <= FAMILY
    assert any(pins for _, pins in map(_pins, PROJECTS))


@pytest.mark.parametrize("path", PROJECTS, ids=lambda path: path.parent.name)
def test_each_package_pins_the_family_to_its_own_minor(path: Path) -> None:
    """``cascade-interfaces>=0.1,<0.2`` in a package of version 0.1.x: no other range."""
    version, pins = _pins(path)
    major, minor = (int(part) for part in version.split(".")[:2])
    expected = f">={major}.{minor},<{major}.{minor + 1}"
    for name, pin in pins:
        assert pin == expected, f"{path.parent.name} pins {name}{pin}; the family's: {expected}"
