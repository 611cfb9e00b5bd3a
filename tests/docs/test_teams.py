"""docs/teams.md's roles file is one the access package reads, its `cascade acl` commands run
on it as written (but for the output paths), its recipe for a team's mosquitto (the ACL
and passwords, mosquitto's configuration, an engine, the CLI) runs end to end on a real
mosquitto, and its NATS one (the authorization and its passwords file, nats-server's
configuration) on a real nats-server, where a scoped login reads within --project only."""

from __future__ import annotations

import json
import os
import queue
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.control.access import Roles
from cascade.testkit import (
    MosquittoBroker,
    free_port,
    mosquitto_path,
    mqtt_accepts,
    nats_server_path,
)

from .examples import BROKER_HOST, ROOT, examples

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
    assert "topic write cascade/constraints/org/acme/task/etl_%2A/pause\n" in mosquitto
    assert "topic read cascade/reply/acme/#\n" in mosquitto  # olga: her org's answers only
    assert "pattern write cascade/reply/+/+/%u\n" in mosquitto
    definitions = json.loads((tmp_path / "out-1").read_text(encoding="utf-8"))
    assert [p["user"] for p in definitions["topic_permissions"]] == [
        "dashboard", "engine-1", "notifier", "olga", "recorder", "root", "vera"
    ]  # fmt: skip
    nats = (tmp_path / "out-2").read_text(encoding="utf-8")
    assert 'include "cascade-passwords.conf"' in nats
    assert '"cascade.telemetry.acme.etl.>",' in nats  # vera's project


def _secrets(tmp_path: Path, logins: list[str]) -> dict[str, str]:
    """A password for each login, in ``secrets/LOGIN`` as the recipe reads them."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    passwords = {login: f"{login}-{secrets.token_hex(8)}" for login in logins}
    for login, password in passwords.items():
        (folder / login).write_text(password, encoding="utf-8")
    return passwords


def _shell(script: str, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


class _Lines:
    """A child's stdout read line by line in a thread, to wait for a line without a sleep."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert child.stdout is not None
        stdout = child.stdout

        def read() -> None:
            for line in stdout:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=read, daemon=True).start()

    def until(self, wanted: Callable[[str], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.lines.get(timeout=left)
            if line is None:
                break
            self.seen.append(line)
            if wanted(line):
                return
        raise AssertionError(f"not seen in {timeout} s: {self.seen[-5:]}")

    def rest(self) -> list[str]:
        while (line := self.lines.get(timeout=60)) is not None:
            self.seen.append(line)
        return self.seen


def _watch(command: str, cwd: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", "-c", f"{command} {' '.join(extra)}"], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.skipif(mosquitto_path() is None, reason="needs mosquitto")
def test_the_recipe_runs_as_written_on_mosquitto(tmp_path: Path) -> None:
    """Steps 1 to 4 of the recipe on a real mosquitto: the engine's run reaches an admin's
    `cascade watch`; the README's engine (no sourced topics) on the same broker does not, and
    the watch says why."""
    (tmp_path / "roles.toml").write_text(_block_after("<!-- roles-file:"), encoding="utf-8")
    etc = tmp_path / "etc"
    etc.mkdir()
    logins = _cli("acl", str(tmp_path / "roles.toml"), "--logins").split()
    assert logins == ["dashboard", "engine-1", "notifier", "olga", "recorder", "root", "vera"]
    passwords = _secrets(tmp_path, logins)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("CASCADE_")}
    _shell(_block_after("recipe step 1").replace("/etc/mosquitto", str(etc)), tmp_path, env)
    assert sorted(
        line.split(":")[0] for line in (etc / "passwords").read_text().splitlines()
    ) == logins  # fmt: skip

    conf = _block_after("<!-- mosquitto-conf:")
    assert [line.split()[0] for line in conf.splitlines()] == [
        "listener", "allow_anonymous", "password_file", "acl_file"
    ]  # fmt: skip
    broker = MosquittoBroker()  # its free port and its folder, with the recipe's config
    conf = conf.replace("/etc/mosquitto", str(etc))
    conf = conf.replace("listener 1883", f"listener {broker.port} 127.0.0.1")
    own = "user root\n" if os.geteuid() == 0 else ""  # as the testkit's: files in tmp_path
    broker.config_path.write_text(f"{own}log_dest stderr\n{conf}", encoding="utf-8")
    broker.start()
    try:
        env["CASCADE_MQTT_PORT"] = str(broker.port)
        step4 = _block_after("recipe step 4").replace("broker.example", "127.0.0.1")
        *setup, watch_line = step4.strip().splitlines()
        _shell("\n".join(setup), tmp_path, env)  # a retained pause: the watch's barrier
        exported = "\n".join(line for line in setup if line.startswith("export"))

        def watched(engine: str, *extra: str) -> tuple[list[str], str]:
            with _watch(f"{exported}\n{watch_line}", tmp_path, env, *extra) as watch:
                lines = _Lines(watch)
                lines.until(lambda line: "cascade/constraints/task/etl_load" in line)
                script = tmp_path / "engine.py"
                script.write_text(engine.replace(BROKER_HOST, f'"127.0.0.1", {broker.port}'))
                ran = subprocess.run(
                    [sys.executable, str(script)], env={**env, "ENGINE_PASSWORD":
                    passwords["engine-1"]}, capture_output=True, text=True, timeout=120,
                    check=False,
                )  # fmt: skip
                assert ran.stdout.strip() == "90", ran.stdout + ran.stderr
                seen = lines.rest()
                assert watch.wait(timeout=60) == 0
                assert watch.stderr is not None
                return seen, watch.stderr.read()

        engine = _block_after("recipe step 3")
        seen, said = watched(engine, "--count", "20", "--duration", "60")
        telemetry = [json.loads(line) for line in seen if '"cascade/telemetry/' in line]
        assert len(telemetry) >= 20, said
        assert {t["payload"]["source"] for t in telemetry} == {"engine-1"}
        assert "warning" not in said

        default_layout = engine.replace("sourced_topics=True", "sourced_topics=False")
        seen, said = watched(default_layout, "--duration", "15")
        assert not [line for line in seen if '"cascade/telemetry/' in line], said
        assert "warning: no telemetry from engine-1 reached this view" in said, said
        assert "connector needs sourced_topics=True" in said
    finally:
        broker.close()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.skipif(nats_server_path() is None, reason="needs nats-server")
def test_the_nats_recipe_runs_as_written_on_nats_server(tmp_path: Path) -> None:
    """The NATS lines as written (but for the paths and ports) on a real nats-server: it
    starts with the authorization and the passwords file they write; vera (a viewer over
    project:acme/etl) reads her project, and a read of every org's is refused, exit 1."""
    (tmp_path / "roles.toml").write_text(_block_after("<!-- roles-file:"), encoding="utf-8")
    etc = tmp_path / "etc"
    etc.mkdir()
    logins = _cli("acl", str(tmp_path / "roles.toml"), "--logins").split()
    passwords = _secrets(tmp_path, logins)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("CASCADE_")}
    step = _block_after("needs nats-server and secrets/").replace("/etc/nats", str(etc))
    _shell(step, tmp_path, env)
    assert sorted(
        line.split(":")[0] for line in (etc / "cascade-passwords.conf").read_text().splitlines()
    ) == [f"CASCADE_PASSWORD_{login}" for login in logins]  # fmt: skip

    client, mqtt = free_port(), free_port()
    conf = _block_after("<!-- nats-conf:")
    conf = conf.replace("127.0.0.1:4222", f"127.0.0.1:{client}")
    conf = conf.replace("/var/lib/nats", str(tmp_path / "jetstream"))
    conf = conf.replace("port: 1883", f"host: 127.0.0.1, port: {mqtt}")
    (etc / "nats-server.conf").write_text(conf, encoding="utf-8")
    server = subprocess.Popen(
        [str(nats_server_path()), "-c", str(etc / "nats-server.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not mqtt_accepts(mqtt, login=("vera", passwords["vera"])):
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "nats-server did not accept vera in 30 s"
            time.sleep(0.05)  # polling another process's state
        assert not mqtt_accepts(mqtt, login=("vera", "not-her-password"))
        login = ["--port", str(mqtt), "--username", "vera"]
        env = {"CASCADE_MQTT_PASSWORD": passwords["vera"]}  # as a person gives it: not in `ps`
        read = CliRunner().invoke(
            app, ["held", "--project", "acme/etl", "--json", "--timeout", "3", *login], env=env
        )
        assert read.exit_code == 0, read.output
        assert json.loads(read.stdout) == {"held": []}
        wide = CliRunner().invoke(app, ["held", "--json", "--timeout", "3", *login], env=env)
        assert wide.exit_code == 1, wide.output
        assert "the broker refused the subscription to cascade/" in wide.output
    finally:
        server.terminate()
        server.communicate(timeout=30)  # and closes its stderr
