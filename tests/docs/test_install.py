"""The README's install lines, each run in a fresh virtualenv, then "everything" on top of the
first; and every extra the docs and the error hints name is one the packages declare."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .examples import ROOT, examples, markdown_files

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli before 3.11")

INSTALL_TIMEOUT = 600  # a cold pip cache downloads every dependency
_EXTRA = re.compile(r"\b(cascade-[a-z-]+)\[([a-z0-9_,-]+)\]")


def _install_lines() -> dict[str, str]:
    """The README's install block: each use (its comment) and its pip line."""
    block = next(
        example
        for example in examples(ROOT / "README.md")
        if example.skip is not None and "test_install.py" in example.skip
    )
    lines: dict[str, str] = {}
    use = ""
    for line in block.code.splitlines():
        if line.startswith("#"):
            use = line.lstrip("# ").split(":")[0]
        elif line.strip():
            lines[use] = line
    return lines


LINES = _install_lines()
CHECKS = {  # what each use must be able to do, and what it must not have
    "the engine and the MQTT connector": (
        "import cascade.runtime, cascade.connectors.mqtt",
        [
            "cascade.cli",
            "cascade.control",
        ],  # the engine needs no client: its Decide is the protocol's
    ),
    "the engine and the `cascade` command": ("import cascade.cli, cascade.runtime", ["starlette"]),
    "everything": (
        "import cascade.history, cascade.dashboard, psycopg, prometheus_client, opentelemetry",
        [],
    ),
}


def _venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin" / "python"


def _pip(python: Path, line: str) -> None:
    """Run ``line`` (``pip install ...``, as written) with this virtualenv's pip, in the clone."""
    words = shlex.split(line)
    assert words[:2] == ["pip", "install"], line
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *words[2:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{line}\n{result.stderr[-3000:]}"
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout


def _can(python: Path, use: str) -> None:
    code, absent = CHECKS[use]
    subprocess.run([str(python), "-c", code], check=True, cwd="/", timeout=60)
    for module in absent:
        probe = f"import importlib.util as u; assert u.find_spec({module!r}) is None"
        subprocess.run([str(python), "-c", probe], check=True, cwd="/", timeout=60)


def test_the_readme_names_the_three_uses() -> None:
    assert list(LINES) == list(CHECKS)


@pytest.mark.parametrize("use", list(CHECKS))
@pytest.mark.timeout(2 * INSTALL_TIMEOUT + 120)  # two installs at most, each bounded on its own
def test_each_line_installs_its_use_in_a_fresh_virtualenv(use: str, tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    _pip(python, LINES[use])
    _can(python, use)
    if use != "the engine and the MQTT connector":
        version = subprocess.run(
            [str(python.parent / "cascade"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert version.stdout.startswith("cascade 0.")
    if use == "the engine and the MQTT connector":  # then everything, on top of it
        _pip(python, LINES["everything"])
        _can(python, "everything")


def _declared_extras() -> dict[str, set[str]]:
    declared = {}
    for pyproject in ROOT.glob("packages/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        declared[project["name"]] = set(project.get("optional-dependencies", {}))
    return declared


def test_every_extra_named_is_declared() -> None:
    """`cascade-cli[dashboard]` and the like, in the docs and in the hints the code prints."""
    declared = _declared_extras()
    sources = [
        *markdown_files(),
        *ROOT.glob("packages/*/src/**/*.py"),
        *ROOT.glob("packages/*/pyproject.toml"),
    ]
    named = 0
    for path in sources:
        for match in _EXTRA.finditer(path.read_text(encoding="utf-8")):
            package, extras = match[1], match[2].split(",")
            assert package in declared, f"{path}: {match[0]} names no package of this repository"
            unknown = set(extras) - declared[package]
            known = sorted(declared[package])
            assert not unknown, f"{path}: {match[0]}: {package} declares {known}"
            named += 1
    assert named > 10
