"""The ACLs docs/protocol.md shows are the files in docs/acl/ that the integration tests load
into real brokers, word for word; mosquitto's is what `cascade acl` writes today from the roles
file beside it."""

from __future__ import annotations

import json
import shlex

from cascade.cli.access import mosquitto_acl
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


def test_the_rabbitmq_command_shown_grants_the_engine_role_of_the_tested_file() -> None:
    """The rabbitmqctl line sets the engine role's write and read patterns, as the file has them."""
    shown = _block_after("<!-- docs-test: skip needs a RabbitMQ node; test_identity_acl")
    words = shlex.split(shown.replace("\\\n", " "))
    assert words[:6] == ["rabbitmqctl", "set_topic_permissions", "-p", "/", "engine-1", "amq.topic"]
    engine = json.loads((ACL_DIR / "rabbitmq-topic-permissions.json").read_text())["engine"]
    assert words[6:] == [engine["write"], engine["read"]]
