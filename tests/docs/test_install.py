"""The README's install lines: one a use, each `pip install -r install/FILE` from the clone's
root, a file of install/ each (the package session, `python3 dev.py nox -s package`, runs them
in fresh virtualenvs and checks what each use can do); and every extra the docs, the install
files and the error hints name is one the packages declare."""

from __future__ import annotations

import ast
import re
import sys

import pytest

from .examples import ROOT, examples, markdown_files

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli before 3.11")

_EXTRA = re.compile(r"\b(cascade-[a-z-]+)\[([a-z0-9_,-]+)\]")
USES = {  # each use the README names, and its file
    "the engine and the MQTT connector": "engine.txt",
    "the engine and the `cascade` command": "command.txt",
    "everything": "everything.txt",
}


def _install_lines() -> dict[str, str]:
    """The README's install block: each use (its comment) and its pip line."""
    block = next(
        example
        for example in examples(ROOT / "README.md")
        if example.skip is not None and "-s package" in example.skip
    )
    lines: dict[str, str] = {}
    use = ""
    for line in block.code.splitlines():
        if line.startswith("#"):
            use = line.lstrip("# ").split(":")[0]
        elif line.strip():
            lines[use] = line
    return lines


def test_each_use_is_one_line_naming_its_file_of_install() -> None:
    """Three uses, three lines, each `pip install -r install/FILE`; install/ holds those files
    only, and each names packages of this repository by their path."""
    lines = _install_lines()
    assert lines == {use: f"pip install -r install/{name}" for use, name in USES.items()}
    assert sorted(p.name for p in (ROOT / "install").iterdir()) == sorted(USES.values())
    packages = {p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file()}
    for name in USES.values():
        text = (ROOT / "install" / name).read_text(encoding="utf-8")
        wanted = [line for line in text.splitlines() if line and not line.startswith("#")]
        for line in wanted:
            found = re.fullmatch(r"\./packages/(cascade-[a-z-]+)(\[[a-z0-9,]+\])?", line)
            assert found is not None, f"install/{name}: {line}"
            assert found[1] in packages - {"cascade-testkit"}, f"install/{name}: {line}"
    everything = (ROOT / "install" / "everything.txt").read_text(encoding="utf-8")
    for extra in ("dask", "otel", "postgresql", "[metrics]", "[history]", "[all]"):
        assert extra in everything, extra  # what the use promises, named


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
        *ROOT.glob("install/*.txt"),
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


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9._-]+)\s*(?:\[([a-z0-9,\s-]+)\])?")


def _external_requirements(wanted: list[tuple[str, str]]) -> set[str]:
    """The requirements outside this repository that installing ``wanted`` (packages of it,
    each with its extras, "" for none) brings, following the packages' own requirements on
    each other and their extras."""
    metadata = {}
    for pyproject in ROOT.glob("packages/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        metadata[project["name"]] = project
    external, seen, todo = set(), set(), list(wanted)
    while todo:
        package, extra = todo.pop()
        if (package, extra) in seen:
            continue
        seen.add((package, extra))
        project = metadata[package]
        needs = (
            project.get("optional-dependencies", {})[extra]
            if extra
            else project.get("dependencies", [])
        )
        if extra:
            todo.append((package, ""))
        for requirement in needs:
            found = _REQUIREMENT.match(requirement)
            assert found is not None, requirement
            name = found[1]
            if name not in metadata:
                external.add(requirement)
                continue
            todo.append((name, ""))
            todo.extend((name, e.strip()) for e in (found[2] or "").split(",") if e.strip())
    return external


def test_everything_installs_what_the_dev_environment_has() -> None:
    """`pip install -r install/everything.txt` and the environments `dev.py` makes (the demo's,
    `dev.py run`'s: every package with the extras noxfile.py's EXTRAS names) bring the same
    libraries: the README says the two match."""
    noxfile = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    extras = next(
        ast.literal_eval(node.value)
        for node in noxfile.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "EXTRAS" for t in node.targets)
    )
    packages = [p.parent.name for p in ROOT.glob("packages/*/pyproject.toml")]
    dev = [
        (package, extra.strip())
        for package in packages
        if package != "cascade-testkit"
        for extra in ["", *extras.get(package, "").strip("[]").split(",")]
    ]
    listed = []
    text = (ROOT / "install" / "everything.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        found = re.fullmatch(r"\./packages/(cascade-[a-z-]+)(?:\[([a-z0-9,]+)\])?", line)
        if found is not None:
            listed += [(found[1], e) for e in ["", *(found[2] or "").split(",")]]
    assert _external_requirements(listed) == _external_requirements(dev)


def test_everything_speaks_http_with_one_client_pinned_once() -> None:
    """`install/everything.txt` brings httpx2 (``cs.http``, the notifier's webhooks, the
    dashboard's sign-in) and no httpx beside it, under one range whichever package asks."""
    listed = []
    text = (ROOT / "install" / "everything.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        found = re.fullmatch(r"\./packages/(cascade-[a-z-]+)(?:\[([a-z0-9,]+)\])?", line)
        if found is not None:
            listed += [(found[1], e) for e in ["", *(found[2] or "").split(",")]]
    clients = {
        requirement.replace(" ", "")
        for requirement in _external_requirements(listed)
        if re.match(r"httpx2?\b", requirement)
    }
    assert clients == {"httpx2>=2,<3"}
