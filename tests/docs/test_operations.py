"""docs/operations.md's recipe where it can run here: its roles file is one the access package
reads; its RabbitMQ steps (the configuration, the plugin, a user per login from its password
file, `guest` deleted, the definitions `cascade acl` writes) run as written on a real RabbitMQ
node, whose engine login then runs a workflow an admin login watches and whose `guest` no
longer logs in; its history steps run on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.control.access import Roles
from cascade.interfaces import ConnectError
from cascade.runtime import Engine, task
from cascade.testkit import (
    NO_RABBITMQ,
    Inbox,
    PrivatePostgreSQL,
    RabbitMQBroker,
    new_database,
    own_postgresql,
    rabbitmq_server_path,
)

from .examples import ROOT, examples

OPERATIONS = ROOT / "docs" / "operations.md"
LOGINS = [
    "dashboard", "engine-1", "engine-2", "engine-3", "notifier", "olga", "recorder", "root",
    "vera",
]  # fmt: skip


def _block_after(marker: str) -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    line = text[: text.index(marker)].count("\n") + 2  # the fence is on the next line
    (block,) = [e for e in examples(OPERATIONS) if e.line == line]
    return block.code


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The shell's: this interpreter's `cascade` first on PATH, no CASCADE_ variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env.update(extra or {})
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _shell(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_roles_file_is_read_as_documented() -> None:
    """Every login of the page's roles file: the people's, the three engines of org acme,
    the recorder, the dashboard and the notifier."""
    roles = Roles.parse(_block_after("<!-- ops-roles:"))
    assert roles.broker.engines == ("engine-1", "engine-2", "engine-3")
    assert roles.broker.notifiers == ("notifier",)
    logins = {*roles.broker_users(), *roles.broker.engines, *roles.broker.recorders,
              *roles.broker.dashboards, *roles.broker.notifiers}  # fmt: skip
    assert sorted(logins) == LOGINS


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """The roles file as roles.toml and a password file per login in secrets/."""
    (tmp_path / "roles.toml").write_text(_block_after("<!-- ops-roles:"), encoding="utf-8")
    folder = tmp_path / "secrets"
    folder.mkdir()
    for login in LOGINS:
        (folder / login).write_text(f"{login}-{secrets.token_hex(8)}", encoding="utf-8")
    return tmp_path


@task
async def etl_load(n: int) -> int:
    return n * 2


@pytest.mark.skipif(rabbitmq_server_path() is None, reason=NO_RABBITMQ)
@pytest.mark.timeout(300)
def test_the_rabbitmq_recipe_runs_as_written(recipe: Path) -> None:
    """Step 2 on a private RabbitMQ node: users made from the password files, guest deleted,
    the definitions imported; engine-1 runs a workflow of acme that root watches, and guest
    (its password everyone knows) no longer logs in, nor does an anonymous client."""
    conf = _block_after("<!-- rabbitmq-conf:")
    assert conf.splitlines() == [
        "mqtt.allow_anonymous = false", "mqtt.vhost = /", "mqtt.exchange = amq.topic"
    ]  # fmt: skip
    # the test node's configuration has the two last lines, and lets anonymous clients in as
    # guest (its readiness probe is one): once the recipe deleted guest, they are refused too
    node_conf = {line.split(" = ")[0]: line for line in conf.splitlines()}
    with RabbitMQBroker() as broker:
        written = broker.config_path.read_text(encoding="utf-8").splitlines()
        assert node_conf["mqtt.vhost"] in written
        assert node_conf["mqtt.exchange"] in written
        node = broker.environment()
        node.pop("RABBITMQ_DIST_PORT")  # the CLI's own ports would be that + 10000
        # the node's own scripts (Debian's /usr/sbin wrappers switch user and environment)
        scripts = str(Path(rabbitmq_server_path() or "").parent)
        env = _environment({**node, "PATH": f"{scripts}:{node['PATH']}"})
        etc = recipe / "etc"
        etc.mkdir()
        step = _block_after("recipe step 2 needs a RabbitMQ node")
        step = step.replace("/etc/cascade/secrets", str(recipe / "secrets"))
        _shell(step.replace("/etc/rabbitmq", str(etc)), recipe, env)
        users = _shell("rabbitmqctl list_users --formatter json", recipe, env)
        assert '"guest"' not in users
        for login in LOGINS:
            assert f'"{login}"' in users
        asyncio.run(_engine_watched_by_root(broker, recipe / "secrets"))


async def _engine_watched_by_root(broker: RabbitMQBroker, secrets_dir: Path) -> None:
    def login(name: str, **options: object) -> MqttConnector:
        password = (secrets_dir / name).read_text(encoding="utf-8")
        return MqttConnector(broker.host, broker.port, username=name, password=password,
                             source_id=name, **options)  # type: ignore[arg-type]  # fmt: skip

    seen = Inbox()
    async with login("root", presence=False) as root:
        await root.subscribe("cascade/telemetry/acme/#", seen)
        engine = Engine(login("engine-1", sourced_topics=True), org_id="acme",
                        project_id="etl", heartbeat_interval=None)  # fmt: skip
        assert await engine.run(etl_load(21)) == 42
        ended = await seen.until(lambda m: m.payload["body"].get("event") == "ENGINE_STOPPED")
    assert ended.topic.endswith("/engine-1")
    for username, password in (("guest", "guest"), (None, None)):  # guest, and anonymous
        refused = MqttConnector(broker.host, broker.port, username=username, password=password,
                                presence=False, connect_timeout=10)  # fmt: skip
        with pytest.raises(ConnectError):
            await refused.connect(require=True)
        await refused.disconnect()


@pytest.fixture
def database_url() -> Iterator[str]:
    """A new database of a private PostgreSQL (skipped, saying why, where it is missing)."""
    for server in own_postgresql():
        assert isinstance(server, PrivatePostgreSQL)
        yield from new_database(server)


def test_the_history_steps_run_on_postgresql(database_url: str, tmp_path: Path) -> None:
    """Step 3 and docs/upgrading.md's migration, as written but for the URL: migrate makes the
    history, status then says it is up to date (exit 0), and the --sql of an up-to-date one
    has nothing to run."""
    documented = "postgresql://cascade@db.example/cascade"
    step = _block_after("recipe step 3 needs a PostgreSQL server")
    assert step.count(documented) == 2
    said = _shell(step.replace(documented, database_url), tmp_path, _environment())
    assert said.strip().endswith("up to date")
    upgrading = (ROOT / "docs" / "upgrading.md").read_text(encoding="utf-8")
    marker = "<!-- docs-test: skip needs the team's database"
    line = upgrading[: upgrading.index(marker)].count("\n") + 2
    (block,) = [e for e in examples(ROOT / "docs" / "upgrading.md") if e.line == line]
    _shell(block.code.replace(documented, database_url), tmp_path, _environment())
    assert "nothing to run" in (tmp_path / "upgrade.sql").read_text(encoding="utf-8")


def _command_lines(path: Path) -> list[tuple[str, list[str]]]:
    """Each `cascade ...` line of the console blocks of ``path`` that are not transcripts
    (a line continued with a backslash joined), split as a shell would."""
    found = []
    for example in examples(path):
        if example.language != "console" or example.code.startswith("$ "):
            continue
        for line in example.code.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" > ")[0])
            if words[:1] == ["cascade"]:
                found.append((example.name, words[1:]))
    return found


@pytest.mark.parametrize("path", ["operations.md", "upgrading.md"])
def test_each_command_shown_is_one_the_cli_takes(path: str) -> None:
    """Every `cascade` line the pages show but cannot run here names a command and options it
    has, each value one it accepts."""
    group = typer.main.get_command(app)
    lines = _command_lines(ROOT / "docs" / path)
    assert lines
    for where, words in lines:
        command, rest = group, words
        while hasattr(command, "commands"):  # a group (typer's own click: no isinstance)
            command, rest = command.commands[rest[0]], rest[1:]
        assert not hasattr(command, "commands"), where
        context = command.make_context(command.name, list(rest))  # raises on what it lacks
        assert context.params, where
        assert "--password" not in rest, where
