"""No import circles among the packages' modules (issue 61): imports run one way.

The graph: every module under ``packages/*/src``, and each ``cascade.`` module it imports,
wherever the import is written (at the top, under ``if TYPE_CHECKING:``, in a function): an
import hidden from the type checker or put off until a call is still a circle between two
ideas. ``import a.b`` imports ``a.b``; ``from a import b`` imports the module ``a.b`` when
there is one, else ``a`` (``b`` is a name of it); relative imports are read from where they
are written. A package's ``__init__`` run before its modules is not counted as imported by
them.

A circle is named ``a -> b -> a``, with where each of its imports is written. Every import
that takes part in a circle is on one named: for each import ``a -> b`` of a circle, the
shortest way back from ``b`` to ``a``.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

Circle = tuple[str, ...]
"""The modules of a circle in import order, from the first by name (``a -> b -> a``: (a, b))."""

KNOWN_CIRCLES: frozenset[Circle] = frozenset()
"""Circles known and being removed: each must still be there (else take it off the list)."""

Graph = dict[str, dict[str, int]]
"""What each module imports: module -> {imported module: line of the first such import}."""


def module_files(root: Path) -> dict[str, Path]:
    """Every module under ``root``'s ``packages/*/src``, by dotted name (a package by its
    ``__init__.py``)."""
    found: dict[str, Path] = {}
    for src in sorted(root.glob("packages/*/src")):
        for path in sorted(src.rglob("*.py")):
            parts = path.relative_to(src).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """Each (dotted name, line) the module ``module`` at ``path`` imports: of a module, or of
    the module a name is imported from (its submodule of that name when ``known`` has one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in known else base), node.lineno


def import_graph(root: Path) -> tuple[Graph, dict[str, Path]]:
    """What each module under ``root``'s ``packages/*/src`` imports of them, and their files."""
    known = module_files(root)
    graph: Graph = {}
    for module, path in known.items():
        imported = graph[module] = {}
        for target, line in imported_names(module, path, known):
            if target in known and target != module:
                imported[target] = min(line, imported.get(target, line))
    return graph, known


def tangles(graph: Graph) -> list[set[str]]:
    """The graph's strongly connected parts of more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(graph[start])))]
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                part: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.add(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(part)
    return found


def _way(graph: Graph, within: set[str], start: str, end: str) -> list[str]:
    """The shortest way of imports from ``start`` to ``end`` inside ``within`` (both ends)."""
    came: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == end:
            break
        for target in sorted(graph[node]):
            if target in within and target not in came:
                came[target] = node
                queue.append(target)
    way = [end]
    while (step := came[way[-1]]) is not None:
        way.append(step)
    return way[::-1]


def circles(graph: Graph) -> list[Circle]:
    """Every circle through each import of a tangle (see the module), each once, sorted."""
    found: set[Circle] = set()
    for part in tangles(graph):
        for module in part:
            for target in graph[module]:
                if target in part:
                    ring = [module, *_way(graph, part, target, module)[:-1]]
                    first = ring.index(min(ring))
                    found.add(tuple(ring[first:] + ring[:first]))
    return sorted(found)


def describe(circle: Circle, graph: Graph, files: Mapping[str, Path], root: Path) -> str:
    """``a -> b -> a``, and where each of its imports is written."""
    lines = [" -> ".join((*circle, circle[0]))]
    for module, target in zip(circle, (*circle[1:], circle[0]), strict=True):
        where = files[module].relative_to(root)
        lines.append(f"    {where}:{graph[module][target]} imports {target}")
    return "\n".join(lines)


def still_there(circle: Circle, graph: Graph) -> bool:
    """Whether each module of ``circle`` still imports the next (and the last the first)."""
    return all(
        target in graph.get(module, {})
        for module, target in zip(circle, (*circle[1:], circle[0]), strict=True)
    )


def test_no_import_circles() -> None:
    """Each module's imports run one way: no circle but the known ones."""
    graph, files = import_graph(ROOT)
    found = [circle for circle in circles(graph) if circle not in KNOWN_CIRCLES]
    if found:
        pytest.fail(
            "import circles (break each by concept: which module holds the idea, which uses it):\n"
            + "\n".join(describe(circle, graph, files, ROOT) for circle in found),
            pytrace=False,
        )


def test_the_known_circles_are_still_there() -> None:
    """A known circle that is gone leaves KNOWN_CIRCLES, so that it cannot come back unseen."""
    graph, _ = import_graph(ROOT)
    gone = [circle for circle in sorted(KNOWN_CIRCLES) if not still_there(circle, graph)]
    if gone:
        pytest.fail(
            "no longer circles: take them off KNOWN_CIRCLES:\n"
            + "\n".join(" -> ".join((*circle, circle[0])) for circle in gone),
            pytrace=False,
        )


# -- the check itself, on small made-up trees ------------------------------------------------


def write(root: Path, files: Mapping[str, str]) -> None:
    """Write made-up modules under ``root`` (paths relative to it)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


SRC = "packages/p/src/cascade/p"


def test_every_way_of_importing_is_an_edge(tmp_path: Path) -> None:
    """Absolute and relative imports, ``from . import x`` of a submodule, names from a
    package, imports under TYPE_CHECKING and in functions; not other packages' modules, nor a
    package's ``__init__`` run before its modules."""
    write(
        tmp_path,
        {
            f"{SRC}/__init__.py": "from ._a import A\n",
            f"{SRC}/_a.py": (
                "from __future__ import annotations\n"
                "import os\n"
                "import cascade.p._b\n"
                "from . import _c, sub\n"
                "from .sub import S\n"
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from .sub._d import D\n"
                "def f() -> None:\n"
                "    from cascade.q import Q\n"
            ),
            f"{SRC}/_b.py": "",
            f"{SRC}/_c.py": "",
            f"{SRC}/sub/__init__.py": "from .._b import B\nfrom . import _d\n",
            f"{SRC}/sub/_d.py": "from ... import p\nfrom ..sub import _d\n",
            "packages/q/src/cascade/q/__init__.py": "",
        },
    )
    graph, _ = import_graph(tmp_path)
    assert graph == {
        "cascade.p": {"cascade.p._a": 1},
        "cascade.p._a": {
            "cascade.p._b": 3,
            "cascade.p._c": 4,
            "cascade.p.sub": 4,
            "cascade.p.sub._d": 8,
            "cascade.q": 10,
        },
        "cascade.p._b": {},
        "cascade.p._c": {},
        "cascade.p.sub": {"cascade.p._b": 1, "cascade.p.sub._d": 2},
        "cascade.p.sub._d": {"cascade.p": 1},
        "cascade.q": {},
    }
    assert circles(graph) == [
        ("cascade.p", "cascade.p._a", "cascade.p.sub", "cascade.p.sub._d"),
        ("cascade.p", "cascade.p._a", "cascade.p.sub._d"),
    ]


def test_each_circle_is_named_once_from_its_first_module(tmp_path: Path) -> None:
    """Two circles through one module are two; the modules of a chain are none."""
    write(
        tmp_path,
        {
            f"{SRC}/_controls.py": "from ._decide import d\nfrom ._start import s\n",
            f"{SRC}/_decide.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from ._controls import Controls\n",
            f"{SRC}/_start.py": "def s() -> None:\n    from . import _controls\n",
            f"{SRC}/_x.py": "from ._y import y\n",
            f"{SRC}/_y.py": "from ._z import z\n",
            f"{SRC}/_z.py": "",
        },
    )
    graph, files = import_graph(tmp_path)
    found = circles(graph)
    assert found == [
        ("cascade.p._controls", "cascade.p._decide"),
        ("cascade.p._controls", "cascade.p._start"),
    ]
    assert describe(found[1], graph, files, tmp_path) == (
        "cascade.p._controls -> cascade.p._start -> cascade.p._controls\n"
        f"    {SRC}/_controls.py:2 imports cascade.p._start\n"
        f"    {SRC}/_start.py:2 imports cascade.p._controls"
    )
    assert still_there(("cascade.p._controls", "cascade.p._decide"), graph)
    assert not still_there(("cascade.p._x", "cascade.p._y"), graph)
    assert not still_there(("cascade.p._gone", "cascade.p._x"), graph)
