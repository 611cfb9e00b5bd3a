"""docs/teams.md's roles file is one the access package reads, and its `cascade acl` commands
run on it as written (but for the output paths)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from typer.testing import CliRunner

from cascade.cli import app
from cascade.control.access import Roles

from .examples import ROOT, examples

TEAMS = ROOT / "docs" / "teams.md"


def _block_after(marker: str) -> str:
    text = TEAMS.read_text(encoding="utf-8")
    line = text[: text.index(marker)].count("\n") + 2  # the fence is on the next line
    (block,) = [e for e in examples(TEAMS) if e.line == line]
    return block.code


def test_the_roles_file_shown_is_read_as_documented() -> None:
    roles = Roles.parse(_block_after("<!-- roles-file:"))
    assert roles.broker_users() == ["olga", "root", "vera"]
    assert roles.broker.engines == ("engine-1",)


def test_the_acl_commands_shown_run_on_it(tmp_path: Path) -> None:
    """Each line's `cascade acl` writes its broker's ACL from the roles file above."""
    (tmp_path / "roles.toml").write_text(_block_after("<!-- roles-file:"), encoding="utf-8")
    commands = _block_after("<!-- docs-test: skip needs the roles file above").splitlines()
    for number, line in enumerate(commands):
        words = shlex.split(line)
        assert words[:2] == ["cascade", "acl"]
        words[words.index("--output") + 1] = str(tmp_path / f"out-{number}")
        words[2] = str(tmp_path / words[2])
        result = CliRunner().invoke(app, words[1:])
        assert result.exit_code == 0, result.output
    mosquitto = (tmp_path / "out-0").read_text(encoding="utf-8")
    assert "user vera\n" in mosquitto
    assert "topic write cascade/constraints/task/etl_%2A/pause\n" in mosquitto
    assert "topic read cascade/reply/acme/#\n" in mosquitto  # olga: her org's answers only
    assert "pattern write cascade/reply/+/+/%u\n" in mosquitto
    definitions = json.loads((tmp_path / "out-1").read_text(encoding="utf-8"))
    assert [p["user"] for p in definitions["topic_permissions"]] == [
        "dashboard", "engine-1", "olga", "recorder", "root", "vera"
    ]  # fmt: skip
