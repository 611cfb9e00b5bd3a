"""`cascade acl`: the broker's ACL (mosquitto's acl_file, RabbitMQ's definitions, nats-server's
authorization) from a roles file, deterministic, and a clear error for what a broker's ACL
cannot say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.access import (
    AclError,
    mosquitto_acl,
    nats_authorization,
    rabbitmq_definitions,
    rabbitmq_definitions_json,
)
from cascade.cli.commands.acl import broker_logins
from cascade.control.access import Roles, RolesError
from cascade.interfaces import constraint_topic
from cascade.interfaces.notes import cleared_topic

ROLES = """
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
broker_users = ["vera"]

[[grant]]
role = "operator"
scopes = ["task:etl_*", "org:acme"]
broker_users = ["olga"]

[[grant]]
role = "viewer"
scopes = ["global"]
broker_users = ["gus"]

[broker]
engines = ["engine-1"]
recorders = ["recorder"]
dashboards = ["dashboard"]
"""


def blocks(text: str) -> dict[str, list[str]]:
    """Each `user` block's topic lines, by login."""
    found: dict[str, list[str]] = {}
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        if lines and lines[0].startswith("user "):
            found[lines[0][5:]] = lines[1:]
    return found


def acl(*args: str) -> Result:
    return CliRunner().invoke(app, ["acl", *args])


@pytest.fixture
def roles_file(tmp_path: Path) -> Path:
    path = tmp_path / "roles.toml"
    path.write_text(ROLES, encoding="utf-8")
    return path


def test_a_viewer_over_a_project_reads_its_runs_only() -> None:
    """Its telemetry and logs, constraints and statuses; snapshot requests and its marker."""
    assert blocks(mosquitto_acl(Roles.parse(ROLES)))["vera"] == [
        "topic readwrite cascade/_marker/#",
        "topic write cascade/command/+/snapshot",
        "topic read cascade/constraints/#",
        "topic read cascade/logs/acme/etl/#",
        "topic write cascade/logs/acme/etl/+/vera",  # its own runs, there only
        "topic read cascade/served/+/+/+",
        "topic read cascade/status/#",
        "topic read cascade/summary/acme/etl/+",  # its runs as engines list them
        "topic write cascade/summary/acme/etl/vera",
        "topic read cascade/telemetry/acme/etl/#",
        "topic write cascade/telemetry/acme/etl/+/+/vera",
    ]


def test_an_operator_writes_its_task_scopes_and_cancels() -> None:
    """The scope path is the CLI's (`*` escaped), its topics exactly (one deeper would be read
    as another scope), placed in the grant's org (and each of its projects), never
    fleet-wide; an org scope reads the org, cancels, and reads that org's answers."""
    olga = blocks(mosquitto_acl(Roles.parse(ROLES)))["olga"]
    for place in ("org/acme/", "project/acme/+/"):
        for topic in (
            "task/etl_%2A",
            *(f"task/etl_%2A/{t}" for t in ("pause", "concurrency", "rate_limit")),
        ):
            assert f"topic write cascade/constraints/{place}{topic}" in olga
            assert f"topic write cascade/cleared/{place}{topic}" in olga
    assert not any("constraints/task/" in line or "cleared/task/" in line for line in olga)
    assert not any(line.endswith("etl_%2A/#") for line in olga)
    assert "topic write cascade/command/acme/+/+/cancel" in olga  # its org's runs only
    assert "topic write cascade/command/acme/+/+/decide" in olga  # decisions, likewise
    assert not any(line.endswith(("/+/+/+/cancel", "/+/+/+/decide")) for line in olga)
    assert "topic read cascade/reply/acme/#" in olga
    assert not any(line.endswith("reply/#") for line in olga)
    assert "topic read cascade/telemetry/acme/#" in olga
    # its org's runs as engines list them, at their depth exactly (not summary/acme: the own
    # summary of a login named acme, which adds up every org's runs: global only)
    assert [line for line in olga if "summary" in line] == [
        "topic read cascade/summary/acme/+/+",
        "topic write cascade/summary/acme/+/olga",
    ]
    assert "topic write cascade/start/acme/#" in olga  # its org's servers only
    assert "topic write cascade/start/#" not in olga
    assert "topic write cascade/signal/acme/#" in olga  # wakes its org's cs.recv only
    assert not any("cascade/signal/#" in line for line in olga)
    assert not any("served/olga" in line for line in olga)  # only engines announce


def test_task_star_is_every_task_topic_of_its_places() -> None:
    """task:* within org:acme writes every topic below acme's task/ (any glob, a narrower one
    included), and below each of its projects'; without a place, every org's too."""
    roles = Roles.parse(ROLES.replace('"task:etl_*", "org:acme"', '"task:*", "org:acme"'))
    olga = [line for line in blocks(mosquitto_acl(roles))["olga"] if "constraints" in line]
    assert olga == [
        "topic read cascade/constraints/#",
        "topic write cascade/constraints/org/acme/task/#",
        "topic write cascade/constraints/project/acme/+/task/#",
    ]
    fleet = Roles.parse(ROLES.replace('"task:etl_*", "org:acme"', '"task:*"'))
    olga = [line for line in blocks(mosquitto_acl(fleet))["olga"] if "write" in line]
    assert "topic write cascade/constraints/task/#" in olga
    assert "topic write cascade/constraints/org/+/task/#" in olga
    assert "topic write cascade/constraints/project/+/+/task/#" in olga


def test_a_task_scope_operator_and_a_viewer_start_nothing() -> None:
    roles = Roles.parse(ROLES.replace('"task:etl_*", "org:acme"', '"task:etl_*"'))
    found = blocks(mosquitto_acl(roles))
    for login in ("olga", "vera", "gus"):
        assert not any("cascade/start/" in line for line in found[login]), login
        assert not any("cascade/signal/" in line for line in found[login]), login
        assert "topic read cascade/served/+/+/+" in found[login]


def test_services_and_global_viewers() -> None:
    """Engines read constraints and commands; dashboards steer everything; a viewer over global
    reads summaries; every login publishes only as itself."""
    text = mosquitto_acl(Roles.parse(ROLES))
    found = blocks(text)
    assert found["engine-1"] == [  # an engine of the plain list: every org's
        "topic read cascade/command/#",
        "topic read cascade/command/+/snapshot",
        "topic read cascade/constraints/#",
        "topic write cascade/logs/+/+/+/engine-1",
        "topic readwrite cascade/schedule/+/+/+/+",
        "topic read cascade/served/+/+/+",
        "topic read cascade/served/+/+/+/ended",
        "topic write cascade/served/+/+/engine-1",
        "topic write cascade/served/+/+/engine-1/ended",
        "topic readwrite cascade/served/+/+/engine-1/probe",
        "topic readwrite cascade/signal/#",
        "topic read cascade/start/+/+/+",
        "topic read cascade/start/+/+/+/engine-1",
        "topic read cascade/status/+",
        "topic write cascade/summary/+/+/engine-1",
        "topic write cascade/telemetry/+/+/+/+/engine-1",
        "topic readwrite cascade/trigger/+/+/+/+",
    ]
    assert "topic readwrite cascade/constraints/#" in found["dashboard"]
    assert "topic write cascade/start/#" in found["dashboard"]
    assert "topic read cascade/cleared/#" in found["recorder"]
    assert "topic read cascade/summary/#" in found["gus"]
    assert "pattern write cascade/reply/+/+/%u" in text
    assert "telemetry/+/+/+/+/%u" not in text  # bound to each login's orgs, in its block
    assert list(found) == sorted(found)


def test_a_notifier_reads_runs_and_statuses_and_writes_nothing_else() -> None:
    """`[broker] notifiers`: `cascade notify`'s login reads the telemetry and the statuses, and
    writes only as itself (its marker; on RabbitMQ the roll call), and `--logins` lists it."""
    roles = Roles.parse(ROLES + 'notifiers = ["notifier"]\n')
    assert blocks(mosquitto_acl(roles))["notifier"] == [
        "topic readwrite cascade/_marker/#",
        "topic read cascade/status/#",
        "topic read cascade/telemetry/#",
    ]
    definitions = json.loads(rabbitmq_definitions_json(roles))
    (granted,) = [p for p in definitions["topic_permissions"] if p["user"] == "notifier"]
    assert "rollcall" in granted["write"]
    assert "constraints" not in granted["write"]
    assert "command" not in granted["write"]
    assert "notifier" in broker_logins(roles)


def test_the_output_is_generated_deterministically_with_a_header(roles_file: Path) -> None:
    """The same file gives the same bytes; the header names it and says not to edit."""
    first, second = acl(str(roles_file), "--mosquitto"), acl(str(roles_file), "--mosquitto")
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    assert first.stdout.startswith(f"# Generated by `cascade acl --mosquitto` from {roles_file}")
    assert "do not edit by hand" in first.stdout.splitlines()[1]


def test_output_goes_to_a_file(roles_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cascade.acl"
    result = acl(str(roles_file), "--mosquitto", "--prefix", "site/cascade", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "topic read site/cascade/telemetry/acme/etl/#" in out.read_text()


def test_rabbitmq_definitions_are_anchored_topic_permissions(roles_file: Path) -> None:
    """One permission and one topic permission per login, on the vhost given; every pattern
    anchored; names escaped; MQTT's `/` written `.`."""
    result = acl(str(roles_file), "--rabbitmq", "--vhost", "fleet")
    assert result.exit_code == 0, result.output
    defined = json.loads(result.stdout)
    assert "users" not in defined
    assert "cascade acl --rabbitmq" in defined["description"]
    users = [p["user"] for p in defined["topic_permissions"]]
    assert users == sorted(users) == ["dashboard", "engine-1", "gus", "olga", "recorder", "vera"]
    assert {p["vhost"] for p in defined["permissions"] + defined["topic_permissions"]} == {"fleet"}
    olga = next(p for p in defined["topic_permissions"] if p["user"] == "olga")
    write, read = re.compile(olga["write"]), re.compile(olga["read"])
    assert write.fullmatch("cascade.constraints.org.acme.task.etl_%2A.pause")
    assert write.fullmatch("cascade.constraints.project.acme.etl.task.etl_%2A.pause")
    assert not write.fullmatch("cascade.constraints.task.etl_%2A.pause")  # every org's
    assert not write.fullmatch("cascade.constraints.org.globex.task.etl_%2A.pause")
    assert not write.fullmatch("cascade.constraints.org.acme.task.%2A.pause")
    assert not write.fullmatch("cascade.constraints.global.pause")
    assert write.fullmatch("cascade.command.acme.etl.0123.cancel")
    assert write.fullmatch("cascade.command.acme.web.0123.decide")
    assert not write.fullmatch("cascade.command.globex.etl.0123.cancel")
    assert not write.fullmatch("cascade.command.acme.etl.0123.other")
    assert write.fullmatch("cascade.command.0123.snapshot")
    assert write.fullmatch("cascade.telemetry.acme.etl.r.events.olga")  # as itself only
    assert not write.fullmatch("cascade.telemetry.acme.etl.r.events.engine-1")
    assert read.fullmatch("cascade.telemetry.acme.*.*.#")  # a subscription's binding key
    assert not read.fullmatch("cascade.telemetry.*.*.*.#")
    assert not read.fullmatch("cascade.summary.*")
    assert read.fullmatch("cascade.summary.acme.etl.engine-1")  # its org's runs listed
    assert read.fullmatch("cascade.summary.acme.*.*")  # a subscription's binding key
    assert not read.fullmatch("cascade.summary.acme")  # a login named acme's own: every org's
    assert not read.fullmatch("cascade.summary.acme.#")
    assert not read.fullmatch("cascade.summary.globex.web.engine-1")
    assert write.fullmatch("cascade.summary.acme.etl.olga")  # as itself, in its org only
    assert not write.fullmatch("cascade.summary.globex.web.olga")
    assert not write.fullmatch("cascade.summary.acme.etl.engine-1")
    assert write.fullmatch("cascade.start.acme.etl.nightly")  # its org's servers' only
    assert write.fullmatch("cascade.start.acme.etl.nightly.engine-1")
    assert not write.fullmatch("cascade.start.globex.etl.nightly")
    assert not write.fullmatch("cascade.served.acme.etl.olga")
    assert read.fullmatch("cascade.served.*.*.*")
    engine = next(p for p in defined["topic_permissions"] if p["user"] == "engine-1")
    write, read = re.compile(engine["write"]), re.compile(engine["read"])
    assert write.fullmatch("cascade.served.acme.etl.engine-1")
    assert write.fullmatch("cascade.served.acme.etl.engine-1.probe")
    assert not write.fullmatch("cascade.served.acme.etl.engine-2")
    assert not write.fullmatch("cascade.start.acme.etl.nightly")
    assert read.fullmatch("cascade.start.acme.etl.nightly")
    assert read.fullmatch("cascade.start.acme.etl.*.engine-1")
    assert not read.fullmatch("cascade.start.acme.etl.*.engine-2")
    assert read.fullmatch("cascade.rollcall")
    # taken literally
    assert read.fullmatch("$share.probe-1a2b.cascade.served.acme.etl.engine-1.probe")
    assert not read.fullmatch("$share.cascade.cascade.start.acme.etl.nightly")
    for entry in defined["topic_permissions"]:
        for pattern in (entry["write"], entry["read"]):
            assert re.fullmatch(r"\^\(.*\)\$", pattern), pattern


def test_a_task_glob_with_mqtt_wildcards_is_a_plain_topic() -> None:
    """`+` and `#` in a glob are escaped as the CLI's topics escape them: no wildcard."""
    roles = Roles.parse(
        '[[grant]]\nrole = "operator"\nscopes = ["task:a+b#c"]\nbroker_users = ["o"]\n'
    )
    assert (
        "topic write cascade/constraints/task/a%2Bb%23c/pause" in blocks(mosquitto_acl(roles))["o"]
    )
    (entry,) = rabbitmq_definitions(roles)["topic_permissions"]
    assert re.fullmatch(entry["write"], "cascade.constraints.task.a%2Bb%23c.pause")


def test_org_levels_are_encoded_as_topics_are() -> None:
    roles = Roles.parse('[[grant]]\nrole = "viewer"\nscopes = ["org:a+b"]\nbroker_users = ["v"]\n')
    assert "topic read cascade/telemetry/a%2Bb/#" in blocks(mosquitto_acl(roles))["v"]


@pytest.mark.parametrize(
    ("scope", "levels"),
    [
        ("org:acme.corp", "acme%2Ecorp/#"),
        ("project:acme/etl*", "acme/etl%2A/#"),
        ("project:team.one/big etl", "team%2Eone/big%20etl/#"),
    ],
)
def test_names_with_dots_stars_and_blanks_are_encoded_levels_on_both_brokers(
    scope: str, levels: str
) -> None:
    """A ``.``, ``*`` or blank in an org or project is encoded in its topic level, as the
    engines' topics encode it: one level on RabbitMQ too, and a line mosquitto's file holds."""
    roles = Roles.parse(f'[[grant]]\nrole = "viewer"\nscopes = ["{scope}"]\nbroker_users = ["v"]\n')
    assert f"topic read cascade/telemetry/{levels}" in blocks(mosquitto_acl(roles))["v"]
    (entry,) = rabbitmq_definitions(roles)["topic_permissions"]
    key = "cascade.telemetry." + levels.replace("/#", "").replace("/", ".") + ".r1.events"
    assert re.fullmatch(entry["read"], key)
    assert not re.fullmatch(entry["read"], "cascade.telemetry.acme.corp.r1.events")


ENGINE_ROLES = '[broker]\nengines = ["worker1.example.com", "host-1"]\n'


def test_a_login_with_dots_gets_its_encoded_level_on_both_brokers() -> None:
    """An engine login ``worker1.example.com`` publishes on ``worker1%2Eexample%2Ecom``:
    mosquitto's ``%u`` would not match that level, so its block names it; RabbitMQ's
    patterns name the encoded level; a plain login keeps the pattern lines alone."""
    roles = Roles.parse(ENGINE_ROLES)
    acl = blocks(mosquitto_acl(roles))
    level = "worker1%2Eexample%2Ecom"
    for line in (
        f"topic readwrite cascade/status/{level}",
        f"topic write cascade/telemetry/+/+/+/+/{level}",
        f"topic write cascade/reply/+/+/{level}",
        f"topic readwrite cascade/_marker/{level}/#",
        f"topic write cascade/served/+/+/{level}",
        f"topic read cascade/start/+/+/+/{level}",
    ):
        assert line in acl["worker1.example.com"]
    assert not any("status/host-1" in line for line in acl["host-1"])  # the pattern lines
    assert "topic read cascade/start/+/+/+/host-1" in acl["host-1"]
    by_user = {e["user"]: e for e in rabbitmq_definitions(roles)["topic_permissions"]}
    write = by_user["worker1.example.com"]["write"]
    assert re.fullmatch(write, f"cascade.status.{level}")
    assert re.fullmatch(write, f"cascade.telemetry.acme.team%2Eone.r1.events.{level}")
    assert not re.fullmatch(write, "cascade.status.worker1.example.com")
    assert not re.fullmatch(by_user["host-1"]["write"], f"cascade.status.{level}")


def test_a_login_with_a_percent_sign_is_refused() -> None:
    """``a%2Eb`` would publish on the level that ``a.b`` encodes to: refused on both."""
    roles = Roles.parse('[broker]\nengines = ["a%2Eb"]\n')
    for generate in (mosquitto_acl, rabbitmq_definitions):
        with pytest.raises(AclError, match="'%'"):
            generate(roles)


@pytest.mark.parametrize(
    ("grant", "message"),
    [
        ('scopes = ["global"]\nbroker_users = ["al ice"]', "grant 1: broker login 'al ice' holds"),
        ('scopes = ["global"]\nbroker_users = ["a\\nb"]', "grant 1: broker login 'a\\nb' holds"),
        ('scopes = ["global"]\nbroker_users = ["a/b"]', "source level"),
    ],
)
def test_what_mosquittos_file_cannot_hold_is_refused_naming_the_grant(
    grant: str, message: str
) -> None:
    roles = Roles.parse(f'[[grant]]\nrole = "operator"\n{grant}\n')
    with pytest.raises(AclError, match=re.escape(message)):
        mosquitto_acl(roles)


def test_what_rabbitmq_reads_as_levels_or_wildcards_is_refused() -> None:
    """A topic prefix is the user's, not encoded: a ``.`` or ``*`` in it is refused there."""
    roles = Roles.parse('[[grant]]\nrole = "viewer"\nscopes = ["global"]\nbroker_users = ["v"]\n')
    with pytest.raises(AclError, match=r"--prefix 'acme.cascade' .*RabbitMQ's MQTT plugin"):
        rabbitmq_definitions(roles, prefix="acme.cascade")
    mosquitto_acl(roles, prefix="acme.cascade")  # mosquitto takes it as it is


def nats_users(text: str) -> dict[str, dict[str, list[str]]]:
    """Each user of nats-server's authorization block: its publish and subscribe allow lists."""
    found: dict[str, dict[str, list[str]]] = {}
    user, side = "", ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("user: "):
            user = json.loads(line[len("user: ") :])
            found[user] = {"publish": [], "subscribe": []}
        elif line.endswith("{ allow: ["):
            side = line.split(":")[0]
        elif line.startswith('"') and user:
            found[user][side].append(json.loads(line.rstrip(",")))
    return found


def test_nats_authorization_is_the_same_rules_as_nats_subjects(roles_file: Path) -> None:
    """Each login's filters as NATS subjects ('/' '.', '+' '*'; 'a/#' is 'a.>' and 'a'), its
    QoS 1 deliveries ($MQTT.sub.>) readable, its password a variable it includes."""
    result = acl(str(roles_file), "--nats")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith(f"# Generated by `cascade acl --nats` from {roles_file}")
    assert 'include "cascade-passwords.conf"' in text
    users = nats_users(text)
    assert sorted(users) == ["dashboard", "engine-1", "gus", "olga", "recorder", "vera"]
    assert "password: $CASCADE_PASSWORD_engine-1" in text
    vera = users["vera"]
    assert {"cascade.telemetry.acme.etl.>", "cascade.telemetry.acme.etl"} <= set(vera["subscribe"])
    assert "cascade.summary.acme.etl.*" in vera["subscribe"]
    assert not any("globex" in s or s == "cascade.telemetry.>" for s in vera["subscribe"])
    assert "cascade.telemetry.acme.etl.*.*.vera" in vera["publish"]
    olga = users["olga"]
    assert "cascade.command.acme.*.*.decide" in olga["publish"]
    # her grant names an org: she steers its tasks there only (org:acme/task:etl_*)
    assert "cascade.constraints.org.acme.task.etl_%2A.pause" in olga["publish"]
    assert "cascade.constraints.task.etl_%2A.pause" not in olga["publish"]
    assert "cascade.constraints.global.pause" not in olga["publish"]
    for login, lists in users.items():
        assert "$MQTT.sub.>" in lists["subscribe"], login
        assert lists["publish"] == sorted(lists["publish"])
    assert result.stdout == acl(str(roles_file), "--nats").stdout


def test_what_nats_reads_as_levels_or_wildcards_is_refused() -> None:
    """A '.' in the prefix would be '//' in its subjects, a '*' or '>' a wildcard; a login
    names its password variable, which nats-server reads with few characters."""
    roles = Roles.parse('[[grant]]\nrole = "viewer"\nscopes = ["global"]\nbroker_users = ["v"]\n')
    for prefix in ("acme.cascade", "a/>"):
        with pytest.raises(AclError, match=r"--prefix .*nats-server"):
            nats_authorization(roles, prefix=prefix)
    odd = Roles.parse('[[grant]]\nrole = "viewer"\nscopes = ["global"]\nbroker_users = ["v,w"]\n')
    with pytest.raises(AclError, match=r"grant 1: broker login 'v,w' .*CASCADE_PASSWORD_v,w"):
        nats_authorization(odd)
    dotted = Roles.parse(
        '[[grant]]\nrole = "viewer"\nscopes = ["org:a.b"]\nbroker_users = ["w1.example.com"]\n'
    )
    users = nats_users(nats_authorization(dotted))
    assert "cascade.status.w1%2Eexample%2Ecom" in users["w1.example.com"]["publish"]
    assert "cascade.telemetry.a%2Eb.>" in users["w1.example.com"]["subscribe"]


def test_errors_are_one_line_and_exit_1(roles_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[broker]\nengines = ["engine 1"]\n', encoding="utf-8")
    for args, message in (
        ([str(bad), "--mosquitto"], "[broker] engines: broker login 'engine 1' holds whitespace"),
        ([str(tmp_path / "none.toml"), "--mosquitto"], "cannot read the roles file"),
        ([str(roles_file), "--rabbitmq", "--prefix", "a/+"], "--prefix"),
        ([str(roles_file), "--mosquitto", "-o", str(tmp_path / "no" / "x")], "cannot write"),
    ):
        result = acl(*args)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert result.output.startswith("cascade: ")
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--mosquitto", "--rabbitmq"],
        ["--nats", "--rabbitmq"],
        ["--mosquitto", "--vhost", "/"],
        ["--nats", "--vhost", "/"],
    ],
)
def test_one_broker_is_named(roles_file: Path, args: list[str]) -> None:
    result = acl(str(roles_file), *args)
    assert result.exit_code == 2


def test_help_says_what_it_writes() -> None:
    """`cascade --help` lists it in one sentence; `acl --help` names both brokers and the file."""
    wide = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    top = CliRunner().invoke(app, ["--help"], env=wide).output
    (line,) = [line for line in top.splitlines() if re.match(r"  acl\s", line)]
    assert line.split("acl", 1)[1].strip() == "Write the broker's ACL from a roles file."
    text = CliRunner().invoke(app, ["acl", "--help"], env=wide).output
    assert "so the broker refuses what a role may not do" in text
    options = ("--mosquitto", "--rabbitmq", "--nats", "--prefix", "--vhost", "--output")
    for option in (*options, "ROLES_FILE"):
        assert option in text
    assert "<bool>" not in text


TENANTS = """
[[grant]]
role = "operator"
scopes = ["project:globex/web"]
broker_users = ["gail"]

[broker.engines]
"org:acme" = ["engine-a"]
"project:globex/web" = ["engine-g"]
global = ["engine-1"]
"""


def test_an_engine_of_an_org_serves_and_takes_commands_there_only() -> None:
    """``[broker.engines]`` by scope: an org's (a project's) engine reads that org's (project's)
    commands and start requests, and announces there, as itself; an operator over a project
    cancels, decides and starts in that project only; a global engine, every org's."""
    roles = Roles.parse(TENANTS)
    assert roles.broker.engines == ("engine-a", "engine-g", "engine-1")
    found = blocks(mosquitto_acl(roles))
    assert found["engine-a"] == [
        "topic read cascade/command/+/snapshot",
        "topic read cascade/command/acme/#",
        "topic read cascade/constraints/#",
        "topic write cascade/logs/acme/+/+/engine-a",
        "topic readwrite cascade/schedule/acme/+/+/+",
        "topic read cascade/served/+/+/+",
        "topic read cascade/served/acme/+/+/ended",  # its org's run ends only
        "topic write cascade/served/acme/+/engine-a",
        "topic write cascade/served/acme/+/engine-a/ended",
        "topic readwrite cascade/served/acme/+/engine-a/probe",
        "topic readwrite cascade/signal/acme/#",  # cs.recv's, its org's
        "topic read cascade/start/acme/+/+",
        "topic read cascade/start/acme/+/+/engine-a",
        "topic read cascade/status/+",
        "topic write cascade/summary/acme/+/engine-a",  # its org's runs listed only
        "topic write cascade/telemetry/acme/+/+/+/engine-a",  # its org's runs only
        "topic readwrite cascade/trigger/acme/+/+/+",
    ]
    assert "topic read cascade/command/globex/web/#" in found["engine-g"]
    assert "topic readwrite cascade/signal/globex/web/#" in found["engine-g"]
    assert "topic write cascade/served/globex/web/engine-g" in found["engine-g"]
    assert "topic write cascade/telemetry/globex/web/+/+/engine-g" in found["engine-g"]
    assert "topic read cascade/start/+/+/+/engine-1" in found["engine-1"]
    assert [line for line in found["gail"] if "command/" in line or "start/" in line] == [
        "topic write cascade/command/+/snapshot",
        "topic write cascade/command/globex/web/+/cancel",
        "topic write cascade/command/globex/web/+/decide",
        "topic write cascade/start/globex/web/#",
    ]
    by_user = {e["user"]: e for e in rabbitmq_definitions(roles)["topic_permissions"]}
    read = re.compile(by_user["engine-a"]["read"])
    assert read.fullmatch("cascade.command.acme.etl.0123.*")  # its run's subscription
    assert not read.fullmatch("cascade.command.globex.etl.0123.*")
    assert read.fullmatch("cascade.start.acme.etl.*.engine-a")
    assert not read.fullmatch("cascade.start.globex.etl.*.engine-a")
    write = re.compile(by_user["engine-a"]["write"])
    assert write.fullmatch("cascade.served.acme.etl.engine-a")
    assert not write.fullmatch("cascade.served.globex.etl.engine-a")
    assert write.fullmatch("cascade.schedule.acme.etl.nightly.20261127T010000Z")  # its claims
    assert not write.fullmatch("cascade.schedule.globex.web.nightly.20261127T010000Z")
    assert read.fullmatch("cascade.schedule.acme.etl.*.*")
    assert not read.fullmatch("cascade.schedule.globex.web.*.*")


SCHEDULES = """
[[grant]]
role = "operator"
scopes = ["schedule:nightly", "org:acme"]
broker_users = ["sam"]

[[grant]]
role = "operator"
scopes = ["schedule:*"]
broker_users = ["stan"]

[[grant]]
role = "viewer"
scopes = ["schedule:*", "global"]
broker_users = ["vic"]
"""


def test_a_schedule_operator_pauses_and_resumes_its_schedules_only() -> None:
    """schedule:nightly writes nightly's constraint topics (its pause) and clear notes, exactly;
    schedule:* every schedule's, one level each; a viewer over schedule:* steers none. sam's
    grant names acme: he pauses nightly there (in acme and its projects), stan fleet-wide. A
    backfill is a start: sam's org:acme grant lets him start (so backfill) acme's slots."""
    found = blocks(mosquitto_acl(Roles.parse(SCHEDULES)))
    topics = ("", *(f"/{t}" for t in ("pause", "concurrency", "rate_limit")))
    for topic in topics:
        for kind in ("constraints", "cleared"):
            for place in ("org/acme/", "project/acme/+/"):
                assert f"topic write cascade/{kind}/{place}schedule/nightly{topic}" in found["sam"]
            assert f"topic write cascade/{kind}/schedule/nightly{topic}" not in found["sam"]
            assert f"topic write cascade/{kind}/schedule/+{topic}" in found["stan"]
    assert not any("schedule/+" in line for line in found["sam"])
    assert "topic write cascade/start/acme/#" in found["sam"]
    assert not any("start/" in line for line in found["stan"])
    assert not any(
        line.startswith(("topic write cascade/constraints", "topic write cascade/cleared"))
        for line in found["vic"]
    )
    by_user = {
        e["user"]: e for e in rabbitmq_definitions(Roles.parse(SCHEDULES))["topic_permissions"]
    }
    stan = re.compile(by_user["stan"]["write"])
    assert stan.fullmatch("cascade.constraints.schedule.hourly.pause")
    assert not stan.fullmatch("cascade.constraints.task.etl_%2A.pause")
    sam = re.compile(by_user["sam"]["write"])
    assert sam.fullmatch("cascade.constraints.org.acme.schedule.nightly.pause")
    assert not sam.fullmatch("cascade.constraints.schedule.nightly.pause")
    assert not sam.fullmatch("cascade.constraints.org.acme.schedule.hourly.pause")


def test_a_schedule_glob_the_broker_cannot_bind_is_refused_naming_the_grant() -> None:
    """A schedule's pause is on its name's topic: schedule:etl_* names no topic filter."""
    roles = Roles.parse(SCHEDULES.replace('scopes = ["schedule:*"]', 'scopes = ["schedule:etl_*"]'))
    for write in (mosquitto_acl, rabbitmq_definitions):
        with pytest.raises(AclError, match=r"grant 2: schedule:etl_\*: .* name the schedules"):
            write(roles)


TRIGGERS = """
[[grant]]
role = "operator"
scopes = ["trigger:nightly_etl"]
broker_users = ["tia"]

[[grant]]
role = "operator"
scopes = ["trigger:*", "project:acme/etl"]
broker_users = ["ted"]
"""


def test_a_trigger_operator_pauses_and_resumes_its_triggers_only() -> None:
    """trigger:nightly_etl writes the topic `cascade pause trigger:nightly_etl` sets (and its
    clear note), fleet-wide, and no other trigger's; trigger:* in a project every trigger's
    there; on each broker. A trigger's pause is on its name's topic: a glob names none."""
    found = blocks(mosquitto_acl(Roles.parse(TRIGGERS)))
    pause = constraint_topic("trigger:nightly_etl", "pause")
    assert pause == "cascade/constraints/trigger/nightly_etl/pause"
    for topic in (pause, cleared_topic(pause), "cascade/constraints/org/+/trigger/nightly_etl"):
        assert f"topic write {topic}" in found["tia"]
    assert not any("trigger/+" in line or "/task/" in line for line in found["tia"])
    assert "topic write cascade/constraints/project/acme/etl/trigger/+/pause" in found["ted"]
    assert "topic write cascade/constraints/trigger/+/pause" not in found["ted"]
    tia = re.compile(
        {e["user"]: e for e in rabbitmq_definitions(Roles.parse(TRIGGERS))["topic_permissions"]}[
            "tia"
        ]["write"]
    )
    assert tia.fullmatch("cascade.constraints.trigger.nightly_etl.pause")
    assert not tia.fullmatch("cascade.constraints.trigger.other.pause")
    assert not tia.fullmatch("cascade.constraints.workflow.nightly_etl.pause")
    publish = nats_users(nats_authorization(Roles.parse(TRIGGERS)))["tia"]["publish"]
    assert "cascade.constraints.trigger.nightly_etl.pause" in publish
    assert not any("trigger.other" in subject for subject in publish)
    roles = Roles.parse(TRIGGERS.replace('"trigger:nightly_etl"', '"trigger:nightly_*"'))
    with pytest.raises(AclError, match=r"grant 1: trigger:nightly_\*: .* name the triggers"):
        mosquitto_acl(roles)


@pytest.mark.parametrize(
    ("engines", "said"),
    [
        ('"task:etl_*" = ["e"]', "is a task scope"),
        ('"org:" = ["e"]', "org:"),
        ('"org:acme" = "e"', "must be a list"),
    ],
)
def test_an_engine_scope_that_names_no_org_or_project_is_refused(engines: str, said: str) -> None:
    with pytest.raises(RolesError, match=said):
        Roles.parse(f"[broker.engines]\n{engines}\n")
