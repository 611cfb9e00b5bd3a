"""`cascade acl`: the broker's ACL from a roles file, so the broker refuses what a role may not
do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cascade.control.access import Roles
from cascade.interfaces import DEFAULT_PREFIX

from ..access import mosquitto_acl, nats_authorization, rabbitmq_definitions_json
from ..plumbing._context import fail

__all__ = ["acl", "broker_logins"]


def broker_logins(roles: Roles) -> list[str]:
    """Every broker login ``roles`` names (grants' ``broker_users`` and the ``[broker]``
    table's), sorted, each once."""
    broker = roles.broker
    services = (*broker.engines, *broker.recorders, *broker.dashboards, *broker.notifiers)
    return sorted({*roles.broker_users(), *services})


def acl(
    roles_file: Annotated[
        Path, typer.Argument(metavar="ROLES_FILE", help="The roles file (TOML [[grant]]s).")
    ],
    mosquitto: Annotated[
        bool, typer.Option("--mosquitto", help="Write mosquitto's acl_file.")
    ] = False,
    rabbitmq: Annotated[
        bool,
        typer.Option(
            "--rabbitmq",
            help="Write RabbitMQ definitions (permissions and topic permissions on amq.topic) "
            "for rabbitmqctl import_definitions; users and passwords are created separately.",
        ),
    ] = False,
    nats: Annotated[
        bool,
        typer.Option(
            "--nats",
            help="Write nats-server's authorization block (users with publish and subscribe "
            "allow lists, for its MQTT listener), to include in its config; it includes each "
            "login's password from cascade-passwords.conf beside it.",
        ),
    ] = False,
    logins: Annotated[
        bool,
        typer.Option(
            "--logins",
            help="List every broker login the roles file names, one a line (to give each a "
            "password: mosquitto_passwd, rabbitmqctl add_user, cascade-passwords.conf).",
        ),
    ] = False,
    prefix: Annotated[
        str, typer.Option("--prefix", help="The topic prefix the fleet uses.")
    ] = DEFAULT_PREFIX,
    vhost: Annotated[
        str | None, typer.Option("--vhost", help="RabbitMQ's virtual host (default: /).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE, not stdout."),
    ] = None,
) -> None:
    """Write the broker's ACL from a roles file.

    Write the broker's ACL from a roles file, so the broker refuses what a role may not do.

    Each broker_users login of a grant gets its roles' reads and writes; the [broker] table's
    engines, recorders, dashboards and notifiers get theirs. An operator's task:, schedule:
    and workflow: scopes are bound to its grant's org: and project: scopes (its constraints'
    topics name them: cascade pause task:etl_* --org acme).
    --logins lists the logins to give passwords to.
    Examples: cascade acl roles.toml --mosquitto -o cascade.acl; cascade acl roles.toml
    --rabbitmq --vhost / -o cascade-definitions.json; cascade acl roles.toml --nats -o
    cascade-authorization.conf; cascade acl roles.toml --logins
    """
    if mosquitto + rabbitmq + nats + logins != 1:
        raise typer.BadParameter("give one of --mosquitto, --rabbitmq, --nats or --logins")
    if (mosquitto or nats) and vhost is not None:
        raise typer.BadParameter("--vhost is RabbitMQ's: give it with --rabbitmq")
    roles = Roles.load(roles_file)  # a RolesError, or an AclError below: exit 1 (_exits)
    source = str(roles_file)
    if logins:
        text = "".join(f"{login}\n" for login in broker_logins(roles))
    elif mosquitto:
        text = mosquitto_acl(roles, source, prefix)
    elif nats:
        text = nats_authorization(roles, source, prefix)
    else:
        text = rabbitmq_definitions_json(roles, source, prefix, vhost or "/")
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc}") from None
