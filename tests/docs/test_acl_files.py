"""The ACLs docs/protocol.md shows are the files in docs/acl/ that the integration tests load
into real brokers, word for word; mosquitto's is what `cascade acl` writes today from the roles
file beside it, and so are RabbitMQ's and NATS's."""

from __future__ import annotations

import shlex

from cascade.cli.access import mosquitto_acl, nats_authorization, rabbitmq_definitions_json
from cascade.control.access import Roles

from .examples import ROOT, examples

PROTOCOL = ROOT / "docs" / "protocol.md"
ACL_DIR = ROOT / "docs" / "acl"


def _block_after(marker: str) -> str:
    """The fenced block that follows ``marker`` in protocol.md."""
    text = PROTOCOL.read_text(encoding="utf-8")
    line = text[: text.index(marker)].count("\n") + 2  # the fence is on the next line
    (block,) = [e for e in examples(PROTOCOL) if e.line == line]
    return block.code


def test_the_mosquitto_acl_shown_is_the_tested_file() -> None:
    """The acl_file block is docs/acl/mosquitto.acl."""
    shown = _block_after("<!-- acl-file: docs/acl/mosquitto.acl -->")
    assert shown == (ACL_DIR / "mosquitto.acl").read_text(encoding="utf-8")


def test_the_mosquitto_acl_is_what_cascade_acl_generates_from_its_roles_file() -> None:
    """docs/acl/mosquitto.acl is `cascade acl docs/acl/roles.toml --mosquitto`'s output, run
    from the repository's root, as its roles file says: a sample written by hand went stale
    (it let any login publish telemetry of any org)."""
    roles = ACL_DIR / "roles.toml"
    generated = mosquitto_acl(Roles.load(roles), "docs/acl/roles.toml", "cascade")
    assert (ACL_DIR / "mosquitto.acl").read_text(encoding="utf-8") == generated
    assert "cascade acl docs/acl/roles.toml --mosquitto" in roles.read_text(encoding="utf-8")


def test_the_rabbitmq_definitions_are_what_cascade_acl_generates_from_its_roles_file() -> None:
    """docs/acl/rabbitmq-definitions.json is `cascade acl docs/acl/roles.toml --rabbitmq`'s
    output, and the commands protocol.md shows generate and load that very file."""
    roles = ACL_DIR / "roles.toml"
    generated = rabbitmq_definitions_json(Roles.load(roles), "docs/acl/roles.toml", "cascade")
    assert (ACL_DIR / "rabbitmq-definitions.json").read_text(encoding="utf-8") == generated
    shown = _block_after("<!-- docs-test: skip needs a RabbitMQ node; test_identity_acl")
    commands = [shlex.split(line) for line in shown.splitlines() if line.strip()]
    assert commands[0] == [
        "cascade", "acl", "docs/acl/roles.toml", "--rabbitmq",
        "--output", "docs/acl/rabbitmq-definitions.json",
    ]  # fmt: skip
    assert commands[-1] == [
        "rabbitmqctl",
        "import_definitions",
        "docs/acl/rabbitmq-definitions.json",
    ]


def test_the_nats_authorization_is_what_cascade_acl_generates_from_its_roles_file() -> None:
    """docs/acl/nats-authorization.conf is `cascade acl docs/acl/roles.toml --nats`'s output,
    as the command protocol.md shows writes it."""
    roles = ACL_DIR / "roles.toml"
    generated = nats_authorization(Roles.load(roles), "docs/acl/roles.toml", "cascade")
    assert (ACL_DIR / "nats-authorization.conf").read_text(encoding="utf-8") == generated
    shown = _block_after("<!-- docs-test: skip needs nats-server; tests/docs/test_teams.py")
    assert shlex.split(shown) == [
        "cascade", "acl", "docs/acl/roles.toml", "--nats",
        "--output", "docs/acl/nats-authorization.conf",
    ]  # fmt: skip
