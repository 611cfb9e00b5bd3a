"""A package's README map names every room of it: a module or folder added, or renamed, is
said where a newcomer looks first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2] / "packages"
# Each package with a map: its source folder, the heading of its map, and the folders in it whose
# own rooms the map lists too.
MAPS = {
    "cascade-cli": ("cascade/cli", "Where the code is", ("commands",)),
    "cascade-dashboard": ("cascade/dashboard", "Where the code is", ()),
    "cascade-testkit": ("cascade/testkit", "Map of the package", ()),
    "cascade-runtime": ("cascade/runtime", "Map of the package", ()),
    "cascade-history": ("cascade/history", "Map of the package", ()),
    "cascade-notify": ("cascade/notify", "Map of the package", ()),
}


def rooms(folder: Path) -> list[str]:
    """A folder's rooms as a map names them: ``_module.py``, ``folder/`` (its dunder files, caches
    and markers aside)."""
    named = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("__") or path.name == "py.typed":
            continue
        if path.is_dir():
            named.append(f"{path.name}/")
        elif path.suffix == ".py":
            named.append(path.name)
    return named


def map_of(package: str, heading: str) -> str:
    readme = (PACKAGES / package / "README.md").read_text(encoding="utf-8")
    assert f"\n## {heading}\n" in readme, f"{package}'s README has no '## {heading}'"
    return readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("package", MAPS)
def test_the_map_names_every_room(package: str) -> None:
    """Each module and folder of the package (and of the folders its map opens) is named in its
    map."""
    source, heading, opened = MAPS[package]
    section = map_of(package, heading)
    top = PACKAGES / package / "src" / source
    missing = [
        room
        for folder in (top, *(top / name for name in opened))
        for room in rooms(folder)
        if not re.search(rf"(?<![\w/]){re.escape(room)}(?![\w])", section)
    ]
    assert missing == [], f"{package}'s map does not name {', '.join(missing)}"
