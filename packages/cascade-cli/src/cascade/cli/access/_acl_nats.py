"""`cascade acl --nats`: a roles file as nats-server's ``authorization`` block (users with
publish and subscribe allow lists), for the MQTT clients of nats-server's MQTT listener.

nats-server maps an MQTT topic to a NATS subject (``/`` written ``.``, ``+`` written ``*``, a
final ``#`` written ``>``) and checks a publish against the login's ``publish`` allow list and
a subscription against ``subscribe``, when it is made: a denied one is refused in its SUBACK
(0x80). An MQTT filter ``a/#`` also matches ``a``, so it becomes two subjects, ``a.>`` and
``a``. A QoS 1 subscription is a JetStream consumer delivering to ``$MQTT.sub.<nuid>``, which
every login subscribes to (nats-server's MQTT documentation); retained messages and sessions
are the server's own streams, which need nothing of the login. A ``.`` in a topic would be
``//`` in its subject and ``*``, ``>`` wildcards: the levels built from names are
percent-encoded (``encode_level``), and a level that still holds one (a topic prefix) is
refused. nats-server has no shared subscriptions (``$share/...`` is a literal subject there).

Passwords are not in it: each login's is the config variable ``CASCADE_PASSWORD_<login>``
(a password or its bcrypt hash), which the file includes from ``cascade-passwords.conf``
beside it (nats-server parses an included file with its own variables: those of the config
that includes it are not seen). A login without one stops the server from starting instead
of letting it in.
"""

from __future__ import annotations

import json

from cascade.control.access import Roles
from cascade.interfaces import DEFAULT_PREFIX, encode_level

from ._acl import LoginRights, broker_rights, identity_filters

__all__ = ["PASSWORDS_FILE", "nats_authorization", "password_variable"]

PASSWORDS_FILE = "cascade-passwords.conf"

# Where nats-server delivers a QoS 1 subscription's messages (its JetStream consumer's
# deliver subject): every MQTT login subscribes there.
_MQTT_DELIVERY = "$MQTT.sub.>"
# What a config variable's name may hold, as nats-server 2.9 parses a reference.
_VARIABLE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.@")


def password_variable(login: str) -> str:
    """The config variable (or environment variable) holding ``login``'s password."""
    return f"CASCADE_PASSWORD_{login}"


def _unsubjectable(text: str) -> str | None:
    if any(char in ".*>" or char.isspace() or not char.isprintable() for char in text):
        return (
            "holds '.', '*', '>', whitespace or a control character, which nats-server maps "
            "to another level, reads as a wildcard or refuses in a subject"
        )
    return None


def _unnameable(login: str) -> str | None:
    if not set(login) <= _VARIABLE_CHARS:
        return (
            f"holds a character nats-server cannot read in the name of its password variable "
            f"${password_variable(login)} (letters, digits, '_', '-', '.', '@' only)"
        )
    return None


def _subjects(topic_filter: str) -> list[str]:
    """The NATS subjects of an MQTT filter (``a/#``: ``a.>`` and ``a``)."""
    levels = ["*" if level == "+" else level for level in topic_filter.split("/")]
    if levels[-1] != "#":
        return [".".join(levels)]
    above = levels[:-1]
    return [".".join([*above, ">"]), ".".join(above)] if above else [">"]


def _allow(filters: set[str], *extra: str) -> list[str]:
    return sorted({*extra, *(subject for f in filters for subject in _subjects(f))})


def _user(login: str, rights: LoginRights) -> list[str]:
    def listed(subjects: list[str]) -> list[str]:
        return [f"          {json.dumps(subject)}," for subject in subjects]

    lines = [f"    # {role}" for role in sorted(rights.roles)]
    lines += [
        "    {",
        f"      user: {json.dumps(login)}",
        f"      password: ${password_variable(login)}",
        "      permissions: {",
        "        publish: { allow: [",
        *listed(_allow(rights.write)),
        "        ] }",
        "        subscribe: { allow: [",
        *listed(_allow(rights.read, _MQTT_DELIVERY)),
        "        ] }",
        "      }",
        "    }",
    ]
    return lines


def nats_authorization(
    roles: Roles, source: str = "the roles file", prefix: str = DEFAULT_PREFIX
) -> str:
    """nats-server's ``authorization`` block giving each broker login of ``roles`` its rights
    as NATS subjects, sorted, each login's password the variable :func:`password_variable`
    names. Raises :class:`AclError` naming the grant when a name cannot be said in a subject
    or a login cannot name its password variable."""
    rights = broker_rights(
        roles,
        prefix,
        exact_retained=False,
        check_name=_unsubjectable,
        check_login=_unnameable,
        name=source,
    )
    for login, login_rights in rights.items():
        for access, topic in identity_filters(prefix, encode_level(login)):
            login_rights.grant(access, topic)
    shown = source if source.isprintable() else repr(source)
    lines = [
        f"# Generated by `cascade acl --nats` from {shown}, topic prefix {prefix!r}:",
        "# do not edit by hand; edit the roles file and generate it again.",
        "#",
        "# Include it in nats-server's config (include cascade-authorization.conf). It includes",
        f"# {PASSWORDS_FILE}, beside it, which defines each login's password (or its bcrypt",
        "# hash) as a variable:",
    ]
    lines += [f'#   {password_variable(login)}: "..."' for login in sorted(rights)]
    lines += [
        "# An MQTT topic is a subject here ('/' written '.', '+' '*', '#' '>'); a QoS 1",
        f"# subscription delivers on {_MQTT_DELIVERY}, which every login subscribes to.",
        "# Constraint topics carry no org; cancels, decisions, starts and announcements name",
        "# the run's (the server's) org and project: each login steers and serves in its own",
        "# scopes only; which task a decision names, only the dashboard checks.",
        f"include {json.dumps(PASSWORDS_FILE)}",
        "authorization {",
        "  users = [",
    ]
    for login in sorted(rights):
        lines += _user(login, rights[login])
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
