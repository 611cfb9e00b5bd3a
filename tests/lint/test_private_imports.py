"""The private-imports check (tests/lint/private_imports.py) on small made-up trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import private_imports
from .private_imports import LIMIT, PrivateImport, check, main


def write(root: Path, path: str, text: str) -> None:
    """Write a made-up test file under ``root``."""
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")


def modules(root: Path) -> tuple[list[str], list[str]]:
    """The modules of every private import under ``root``, and of the forbidden ones."""
    found, forbidden = check(root)
    return [each.module for each in found], [each.module for each in forbidden]


def test_every_way_of_importing_a_private_module_is_found(tmp_path: Path) -> None:
    """``from m._p import``, ``import m._p``, ``from m import _p``, ``import_module`` (local
    imports too); public imports, relative ones and dunders are not private imports."""
    write(
        tmp_path,
        "packages/p/tests/test_other.py",
        "import importlib\n"
        "from cascade.cli._render import render_watch\n"
        "import cascade.history._migrate as migrate\n"
        "from cascade.cli.dashboard import _api, create_app\n"
        "from cascade.cli import app, __version__\n"
        "from .helpers import _private\n"
        "import os._private\n"
        "def test() -> None:\n"
        "    from cascade.runtime._telemetry import RunCounters\n"
        "    importlib.import_module('cascade.cli._render')\n"
        "    text = 'from cascade.cli._listen import bind'\n",
    )
    found, forbidden = modules(tmp_path)
    expected = [
        "cascade.cli._render",
        "cascade.history._migrate",
        "cascade.cli.dashboard._api",
        "cascade.runtime._telemetry",
        "cascade.cli._render",
    ]
    assert sorted(found) == sorted(expected)
    assert sorted(forbidden) == sorted(expected)


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("packages/p/tests/test_render.py", "cascade.cli._render"),
        ("packages/p/tests/test_render_properties.py", "cascade.cli._render"),
        ("packages/p/tests/test_dashboard_api.py", "cascade.cli.dashboard._api"),
        ("packages/p/tests/test_api.py", "cascade.cli.dashboard._api"),
        ("packages/p/tests/paho/test_link.py", "cascade.connectors.mqtt._paho._link"),
        ("packages/p/tests/paho/deeper/test_x.py", "cascade.connectors.mqtt._paho"),
        ("packages/p/tests/integration/test_paho_link.py", "cascade.connectors.mqtt._paho"),
        ("tests/faults/test_telemetry_bursts.py", "cascade.runtime._telemetry"),
    ],
)
def test_a_test_about_the_module_may_import_it(tmp_path: Path, path: str, module: str) -> None:
    """Its file name starts with the module's (or parent_module's) name, or a folder under
    tests/ is named for it."""
    write(tmp_path, path, f"from {module} import thing\n")
    assert modules(tmp_path) == ([module], [])


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("packages/p/tests/test_watch_view.py", "cascade.cli._render"),
        ("packages/p/tests/test_dashboard_guards.py", "cascade.cli.dashboard._api"),
        ("packages/p/tests/paho/test_reader.py", "cascade.connectors.mqtt._wire"),
        # a folder outside tests/ names nothing
        ("packages/listen/tests/test_x.py", "cascade.cli._listen"),
        ("tests/faults/conftest.py", "cascade.cli._publishing"),
    ],
)
def test_a_test_about_something_else_may_not(tmp_path: Path, path: str, module: str) -> None:
    """The same import in a file named for something else is a violation."""
    write(tmp_path, path, f"from {module} import thing\n")
    assert modules(tmp_path) == ([module], [module])


def test_only_test_files_are_read(tmp_path: Path) -> None:
    """Sources, benchmarks and files outside a tests folder are not tests."""
    for path in ("packages/p/src/cascade/p/x.py", "packages/p/benchmarks/b.py", "dev.py"):
        write(tmp_path, path, "from cascade.cli._render import render_watch\n")
    assert modules(tmp_path) == ([], [])


def test_main_names_each_violation_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per violation (file, line, module, rule), then the count; exit status 1."""
    write(tmp_path, "tests/faults/test_x.py", "import os\n\nfrom cascade.cli._reading import r\n")
    assert main([str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "tests/faults/test_x.py:3: imports private module cascade.cli._reading: "
        + private_imports.RULE
    )
    assert lines[1].startswith("1 private imports in tests (1 forbidden)")


def test_main_passes_below_the_limit_and_fails_at_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Allowed imports pass while they are fewer than LIMIT; LIMIT of them fail, saying so."""
    text = "".join(f"from cascade.cli._render import n{i}\n" for i in range(LIMIT - 1))
    write(tmp_path, "packages/p/tests/test_render.py", text)
    assert main([str(tmp_path)]) == 0
    write(tmp_path, "packages/p/tests/test_render_more.py", "import cascade.cli._render\n")
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{LIMIT} private imports in tests (0 forbidden); limit {LIMIT}" in out
    assert f"must stay fewer than {LIMIT}" in out


def test_subject_names() -> None:
    """The module's first private part names it, alone or after its parent's name."""
    found = PrivateImport(Path("t.py"), 1, "cascade.connectors.mqtt._paho._link")
    assert (found.subject, found.parent_subject) == ("paho", "mqtt_paho")
