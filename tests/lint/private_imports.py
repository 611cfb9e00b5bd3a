"""Tests import the packages' public API, and a private module only in the tests about it.

A private module is one with a part of its dotted name starting with ``_``:
``cascade.cli._render``, ``cascade.cli.dashboard._api``, ``cascade.connectors.mqtt._paho._link``.
It is reached by ``from cascade.cli._render import ...``, ``import cascade.cli._render``,
``from cascade.cli import _render`` or ``importlib.import_module("cascade.cli._render")``.

The rule: a test file may import a private module only if the file is about it, that is if
the module's first private part, ``_mod`` of ``cascade.pkg._mod`` (say ``_render``),

- begins the file's name: ``test_render.py``, ``test_render_properties.py``; or
- does so with its parent's name before it: ``test_dashboard_api.py`` for
  ``cascade.cli.dashboard._api``; or
- names a folder the file sits in under its ``tests/`` folder: ``tests/paho/test_link.py`` for
  ``cascade.connectors.mqtt._paho._link``.

And tests hold fewer than ``LIMIT`` private imports in all, allowed or not: what a test needs
of a package is exported by the package (see each README's "Public API"), and a test that
reaches in is about that module alone.

ruff's banned-api (flake8-tidy-imports) cannot say "except in the tests about the module", so
this script is the check; ``nox -s lint`` runs it after ruff.

    python3 tests/lint/private_imports.py [ROOT]

prints one line per violation and the count, and exits non-zero on any violation, or when the
count reaches ``LIMIT``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LIMIT = 30
# The test files: every package's tests, and the cross-package suites.
TEST_FILES = ("packages/*/tests/**/*.py", "tests/**/*.py")
RULE = (
    "a test imports a private module cascade.pkg._mod only where its file name starts with "
    "test_mod or test_pkg_mod, or it sits in a tests/.../mod/ folder"
)


@dataclass(frozen=True)
class PrivateImport:
    """One import of a private module in a test file."""

    path: Path
    line: int
    module: str

    @property
    def subject(self) -> str:
        """The module's first private part, without its underscore: ``_api`` -> ``api``."""
        return next(part for part in self.module.split(".") if part.startswith("_")).lstrip("_")

    @property
    def parent_subject(self) -> str:
        """The subject with its parent's name before it: ``dashboard_api``."""
        parts = self.module.split(".")
        index = next(i for i, part in enumerate(parts) if part.startswith("_"))
        return "_".join(part.lstrip("_") for part in parts[max(index - 1, 0) : index + 1])


def is_private(module: str) -> bool:
    """Whether a dotted name of ours has a part starting with ``_`` (dunders are not private)."""
    parts = module.split(".")
    return parts[0] == "cascade" and any(
        part.startswith("_") and not part.endswith("__") for part in parts
    )


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Each (line, dotted name) a module imports: modules, and names from modules."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if is_private(node.module):
                # the names come from a private module: one import of it
                yield node.lineno, node.module
            else:
                for alias in node.names:
                    yield node.lineno, f"{node.module}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def private_imports(path: Path, source: str) -> list[PrivateImport]:
    """The private modules the test file at ``path``, holding ``source``, imports."""
    tree = ast.parse(source, filename=str(path))
    return [
        PrivateImport(path, line, module)
        for line, module in imported_modules(tree)
        if is_private(module)
    ]


def folders_under_tests(path: Path) -> tuple[str, ...]:
    """The folders between a test file's ``tests/`` folder and the file."""
    parts = path.parts[:-1]
    if "tests" not in parts:
        return ()
    return parts[parts.index("tests") + 1 :]


def is_about(found: PrivateImport) -> bool:
    """Whether the test file that imports a private module is about that module (the rule)."""
    stem = found.path.stem.removeprefix("test_")
    names = (found.subject, found.parent_subject)
    return any(stem.startswith(name) for name in names) or (
        found.subject in folders_under_tests(found.path)
    )


def test_files(root: Path) -> list[Path]:
    """Every test file under ``root``, relative to it, sorted."""
    found = {path for pattern in TEST_FILES for path in root.glob(pattern)}
    return sorted(path.relative_to(root) for path in found if path.is_file())


def check(root: Path) -> tuple[list[PrivateImport], list[PrivateImport]]:
    """Every private import in the tests under ``root``, and those the rule forbids."""
    found = [
        each
        for path in test_files(root)
        for each in private_imports(path, (root / path).read_text(encoding="utf-8"))
    ]
    return found, [each for each in found if not is_about(each)]


def main(argv: list[str]) -> int:
    """Print the violations and the count; 1 if any violation or the count reached LIMIT."""
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    found, violations = check(root)
    for each in violations:
        print(f"{each.path}:{each.line}: imports private module {each.module}: {RULE}")
    print(f"{len(found)} private imports in tests ({len(violations)} forbidden); limit {LIMIT}")
    if len(found) >= LIMIT:
        print(
            f"{len(found)} private imports in tests: they must stay fewer than {LIMIT}; "
            "export what the tests need from the package's public API instead"
        )
    return 1 if violations or len(found) >= LIMIT else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
