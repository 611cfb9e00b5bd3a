"""The page's script as the package ships it: ES modules that import what they use, in a graph
without a circle, sharing nothing through ``window`` but the browser tests' counters, each one
in the README's map of them."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

STATIC = files("cascade.dashboard") / "static"
README = Path(__file__).resolve().parents[1] / "README.md"
# what the browser tests (and the benchmark) read; the page itself shares nothing there
COUNTERS = {
    "cascadeDownloads",
    "cascadeEvents",
    "cascadeFirstState",
    "cascadeGraphLayouts",
    "cascadeHistoryLoads",
    "cascadeReconnects",
    "cascadeRepaints",
    "cascadeRunPage",
}


def _modules() -> dict[str, str]:
    return {
        f.name: f.read_text(encoding="utf-8") for f in STATIC.iterdir() if f.name.endswith(".js")
    }


def _imports(source: str) -> list[str]:
    return re.findall(r'^import \{[^}]*\} from "\./([a-z]+\.js)";$', source, re.M)


def test_every_import_is_a_module_of_the_page_and_none_comes_back() -> None:
    """A module imports named things from another module of static/ only (no bare
    specifier, nothing fetched elsewhere), and no chain of imports leads back to where it
    started."""
    modules = _modules()
    graph = {name: _imports(source) for name, source in modules.items()}
    for name, source in modules.items():
        assert len(re.findall(r"^import ", source, re.M)) == len(graph[name]), name
        assert set(graph[name]) <= set(modules), name
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name not in done:
            for imported in graph[name]:
                visit(imported, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_nothing_is_shared_through_window_but_the_tests_counters() -> None:
    used = {
        found for source in _modules().values() for found in re.findall(r"\bwindow\.(\w+)", source)
    }
    assert used - {"addEventListener"} <= COUNTERS


def test_the_readme_maps_every_module() -> None:
    """One line per module in the README's map, each module once, none that is not there."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### The page's modules", 1)[1].split("\n## ", 1)[0]
    mapped = re.findall(r"^- `([a-z]+\.js)`: ", section, re.M)
    assert sorted(mapped) == sorted(_modules())
