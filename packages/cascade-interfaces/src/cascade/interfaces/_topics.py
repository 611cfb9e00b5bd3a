"""Topic names: MQTT-exact matching, id encoding, and builders for every docs/protocol.md topic."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import unquote, unquote_to_bytes

from ._errors import InvalidTopicError
from ._ids import validate_id

__all__ = [
    "DEFAULT_PREFIX",
    "constraint_topic",
    "constraints_filter",
    "decode_level",
    "encode_level",
    "events_topic",
    "heartbeat_topic",
    "rollcall_topic",
    "same_place",
    "same_source",
    "scope_from_path",
    "scope_to_path",
    "split_run_topic",
    "status_filter",
    "status_topic",
    "telemetry_filter",
    "topic_matches",
    "validate_filter",
    "validate_prefix",
    "validate_topic",
]

DEFAULT_PREFIX = "cascade"
_MAX_TOPIC_BYTES = 65535
_SHARE = "$share/"


def _is_unsafe_char(char: str) -> bool:
    """Characters that must never reach a topic level built from an id or a scope.

    The MQTT separators and wildcards, NUL, the C0/C1 control characters and
    Unicode non-characters (MQTT 5 §1.5.4 says topics should not contain them),
    and lone surrogates (which have no UTF-8 encoding at all).
    """
    code = ord(char)
    return (
        char in "/+#"
        or code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or (code & 0xFFFE) == 0xFFFE
    )


# Characters a supported broker refuses in a topic level or reads differently: NATS closes
# the connection for "." or whitespace and reads "*" and ">" as its wildcards; RabbitMQ's
# MQTT plugin carries neither "*" nor "." unchanged. "%" is the escape itself.
_ENCODED = frozenset("%.*>")


def _is_encoded_char(char: str) -> bool:
    return char in _ENCODED or char.isspace() or _is_unsafe_char(char)


# The ASCII characters _is_encoded_char picks (its own, the C0 controls, DEL, and the ASCII
# whitespace, which is among them): a plain ASCII id without any is its own level.
_ASCII_ENCODED = re.compile(r"[%.*>/+#\x00-\x20\x7f]")


def _encode(part: str) -> str:
    # the common case at C speed: a fleet's thousands of source ids overflow any cache, and
    # the walk below, a character at a time, made reading 10,000 statuses take seconds
    if part.isascii() and _ASCII_ENCODED.search(part) is None:
        return part
    return "".join(
        "".join(f"%{byte:02X}" for byte in c.encode("utf-8", "surrogatepass"))
        if _is_encoded_char(c)
        else c
        for c in part
    )


@functools.lru_cache(maxsize=1024)  # on every publish: a run's telemetry topics repeat
def encode_level(value: str) -> str:
    """``value`` (an id) as exactly one topic level that every supported broker carries.

    Each character that could add a level or a wildcard, or that a broker refuses or
    maps, is percent-encoded as its UTF-8 bytes (``%XX``, uppercase hex): ``%`` itself,
    ``.``, every whitespace character, ``*``, ``>``, ``/``, ``+``, ``#``, NUL, the C0/C1
    control characters and Unicode non-characters. Every other character is kept, so a
    plain id (``host-123``, ``acme``, a 32-hex run id) is its own level:
    ``worker1.example.com`` → ``worker1%2Eexample%2Ecom``. :func:`decode_level` inverts it.
    """
    return _encode(value)


def decode_level(level: str) -> str:
    """The id that :func:`encode_level` made ``level`` of.

    A level that is no encoding (a stray ``%`` that is not followed by two hex digits
    is kept as written; bytes that are not UTF-8 leave the whole level as written) is
    read as the id itself, as the existing tools wrote it.
    """
    if "%" not in level:
        return level
    try:
        return unquote_to_bytes(level).decode("utf-8")
    except UnicodeDecodeError:
        return level


def _legacy_level(value: str) -> str:
    """The level the existing tools build for ``value``: unsafe characters replaced by ``_``."""
    return "".join("_" if _is_unsafe_char(c) else c for c in value) if value else "_"


def _check_common(name: str, what: str) -> None:
    if not name:
        raise InvalidTopicError(f"{what} must not be empty")
    if "\x00" in name:
        raise InvalidTopicError(f"{what} must not contain NUL: {name!r}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidTopicError(f"{what} is not valid UTF-8: {name!r}") from exc
    if size > _MAX_TOPIC_BYTES:
        raise InvalidTopicError(f"{what} is {size} bytes long; MQTT allows {_MAX_TOPIC_BYTES}")


@functools.lru_cache(maxsize=1024)  # on every publish: a run's telemetry topics repeat
def validate_topic(topic: str) -> str:
    """Check that ``topic`` is a valid MQTT topic *name* (no wildcards) and return it."""
    _check_common(topic, "topic name")
    if "+" in topic or "#" in topic:
        raise InvalidTopicError(f"topic name must not contain the wildcards + or #: {topic!r}")
    return topic


@functools.lru_cache(maxsize=1024)
def validate_filter(topic_filter: str) -> str:
    """Check that ``topic_filter`` is a valid MQTT topic filter.

    Returns the filter that is matched against topics: for a shared
    subscription ``$share/<group>/<filter>`` that is ``<filter>``.
    """
    _check_common(topic_filter, "topic filter")
    effective = topic_filter
    if topic_filter.startswith(_SHARE):
        group, sep, effective = topic_filter[len(_SHARE) :].partition("/")
        if not group or "+" in group or "#" in group:
            raise InvalidTopicError(
                f"shared subscription needs a group name without wildcards: {topic_filter!r}"
            )
        if not sep or not effective:
            raise InvalidTopicError(
                f"shared subscription needs a topic filter after the group: {topic_filter!r}"
            )
    levels = effective.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise InvalidTopicError(
                f"'#' must be a whole level and the last one in a filter: {topic_filter!r}"
            )
        if "+" in level and level != "+":
            raise InvalidTopicError(f"'+' must be a whole level in a filter: {topic_filter!r}")
    return effective


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter``, exactly as MQTT 3.1.1 / 5.0 §4.7 define it.

    ``+`` matches one whole level (also an empty one), ``#`` matches the rest of
    the topic including its parent (``a/#`` matches ``a``), a filter that starts
    with a wildcard never matches a topic that starts with ``$``, and a
    ``$share/<group>/`` prefix is matched as the filter behind it.

    Raises :class:`InvalidTopicError` for an invalid filter or topic name.
    """
    effective = validate_filter(topic_filter)
    validate_topic(topic)
    return levels_match(effective.split("/"), topic.split("/"))


def levels_match(filter_levels: Sequence[str], topic_levels: Sequence[str]) -> bool:
    """:func:`topic_matches` for a filter already validated and split into its levels (the
    one behind a ``$share/<group>/`` prefix), and a topic name taken as valid, split too (a
    topic matched against several filters is split once)."""
    if topic_levels[0][:1] == "$" and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or (level != "+" and level != topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


def validate_prefix(prefix: str) -> str:
    """Check a topic prefix (``cascade``, ``acme/cascade``): a plain topic name.

    Like an id (:func:`validate_id`) it is valid UTF-8 and at most
    ``MAX_ID_BYTES`` long; unlike one it may have several levels, but no
    wildcards, and it must not start with ``$`` or start or end with ``/``.
    Raises :class:`InvalidIdError` or :class:`InvalidTopicError` (both ``ValueError``).
    """
    validate_id(prefix, "topic_prefix")
    validate_topic(prefix)
    if prefix.startswith(("$", "/")) or prefix.endswith("/"):
        raise InvalidTopicError(
            f"topic prefix must not start with '$' or start or end with '/': {prefix!r}"
        )
    return prefix


def _telemetry(
    prefix: str, org_id: str, project_id: str, run_id: str, kind: str, source: str | None = None
) -> str:
    levels = [
        prefix,
        "telemetry",
        encode_level(org_id),
        encode_level(project_id),
        encode_level(run_id),
        kind,
    ]
    if source is not None:
        levels.append(encode_level(source))
    return "/".join(levels)


def events_topic(
    org_id: str,
    project_id: str,
    run_id: str,
    prefix: str = DEFAULT_PREFIX,
    source: str | None = None,
) -> str:
    """``{prefix}/telemetry/{org}/{project}/{run_id}/events``, each id encoded; with
    ``source``, the sourced layout ``.../events/{source}`` a broker ACL can bind to a login."""
    return _telemetry(prefix, org_id, project_id, run_id, "events", source)


def heartbeat_topic(
    org_id: str,
    project_id: str,
    run_id: str,
    prefix: str = DEFAULT_PREFIX,
    source: str | None = None,
) -> str:
    """``{prefix}/telemetry/{org}/{project}/{run_id}/heartbeat``, each id encoded (with
    ``source``: ``.../heartbeat/{source}``, as :func:`events_topic`)."""
    return _telemetry(prefix, org_id, project_id, run_id, "heartbeat", source)


def telemetry_filter(
    org_id: str | None = None,
    project_id: str | None = None,
    run_id: str | None = None,
    kind: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """A filter over telemetry topics of both layouts (with and without the source level);
    each part left as ``None`` matches any value."""

    def level(value: str | None) -> str:
        return "+" if value is None else encode_level(value)

    levels = [prefix, "telemetry", level(org_id), level(project_id), level(run_id)]
    if kind is not None:
        levels.append(encode_level(kind))
    return "/".join((*levels, "#"))


_TELEMETRY_KINDS = frozenset(("events", "heartbeat", "snapshot"))


def split_run_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str | None] | None:
    """Which layout a run's topic under ``prefix`` is on, the one rule every reader of both
    layouts asks: its kind (``events``, ``heartbeat``, ``snapshot`` of a telemetry topic;
    ``logs`` of a log lines' one) and its source level (as in the topic, encoded; ``None`` on
    the plain layout, ``.../{run_id}/{kind}`` and ``.../{run_id}``). ``None`` for a topic
    that is a run's telemetry or logs on neither layout.

    ``cascade/telemetry/o/p/r/events/host%2F1`` → ``("events", "host%2F1")``;
    ``cascade/logs/o/p/r`` → ``("logs", None)``."""
    head = len(prefix)
    if not topic.startswith(prefix) or topic[head : head + 1] != "/":
        return None
    levels = topic[head + 1 :].split("/")
    count = len(levels)
    if levels[0] == "telemetry":  # telemetry/org/project/run/kind[/source]
        if (count == 5 or count == 6) and levels[4] in _TELEMETRY_KINDS:
            return levels[4], levels[5] if count == 6 else None
    elif levels[0] == "logs" and (count == 4 or count == 5):  # logs/org/project/run[/source]
        return "logs", levels[4] if count == 5 else None
    return None


def same_source(claimed: str, level: str) -> bool:
    """Whether a payload's ``source`` is the one its topic's source ``level`` names: the
    level is the encoded source (:func:`encode_level`), or the level the existing tools
    built for it (``/ + #`` and control characters replaced by ``_``) as the level reads
    (:func:`decode_level`), so a broker ACL that binds the level binds the claim."""
    return _names(level, claimed)


def same_place(topic: str, org_id: str, project_id: str, prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether a run's telemetry or logs ``topic`` (one :func:`split_run_topic` reads) names
    the org and project its payload claims (``org_id``, ``project_id``), each level read as
    :func:`same_source` reads a source's: the topic is what a broker ACL binds to a login's
    orgs and projects, the payload is not."""
    levels = topic[len(prefix) + 1 :].split("/", 3)
    return len(levels) > 3 and _names(levels[1], org_id) and _names(levels[2], project_id)


def _names(level: str, claimed: str) -> bool:
    if encode_level(claimed) == level:
        return True
    # the existing tools' level, read as any level is: so a level that decodes to another
    # id (a%2Eb is a.b's) never vouches for a claim spelled like it
    return _legacy_level(claimed) == decode_level(level)


def status_topic(source: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/status/{source}``, the source encoded (:func:`encode_level`)."""
    return f"{prefix}/status/{encode_level(source)}"


def status_filter(prefix: str = DEFAULT_PREFIX) -> str:
    """The filter over every source's status topic."""
    return f"{prefix}/status/+"


def rollcall_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """Where a reader asks every online source to announce itself again: ``{prefix}/rollcall``.

    Used on brokers that send retained statuses only to exact subscriptions, where
    ``{prefix}/status/+`` brings no retained birth (``Connector.call_roll``).
    """
    return f"{prefix}/rollcall"


def scope_to_path(scope: str) -> str:
    """The topic levels for ``scope``: its first ``:`` becomes ``/``.

    ``task:api_*`` → ``task/api_%2A``; ``task:load`` → ``task/load``.

    Each part is percent-encoded as an id is (:func:`encode_level`: ``/ + # %``,
    control characters, ``.``, whitespace, ``*`` and ``>``), so every scope maps to one topic, the
    same on every broker, and back (see :func:`scope_from_path`), which is how
    readers take a constraint's scope from its topic: the existing tools' topics
    for the same scope (``task/api_*``) are read alike.

    A scope placed in an org or a project (``org:acme/task:etl_*``,
    ``project:acme/etl/task:etl_*``) is the place's levels, as written (its ids' topic
    levels), then its target's path: ``org/acme/task/etl_%2A``,
    ``project/acme/etl/task/etl_%2A``: what a broker ACL binds to that org's operators.
    """
    kind, sep, rest = scope.partition(":")
    levels = _PLACE_LEVELS.get(kind)
    if sep and levels is not None:
        parts = rest.split("/", levels)
        if len(parts) > levels:
            return "/".join([kind, *parts[:levels], scope_to_path(parts[levels])])
    return f"{_encode(kind)}/{_encode(rest)}" if sep else _encode(scope)


# The kinds of a placed scope, each with the number of levels of its place.
_PLACE_LEVELS = {"org": 1, "project": 2}


def scope_from_path(path: str) -> str:
    """Invert :func:`scope_to_path`.

    A path of more than two levels is read as the existing tools wrote it
    (``task/a/b`` → ``task:a/b``), but for a placed scope's (``org/acme/task/etl_%2A`` →
    ``org:acme/task:etl_*``).
    """
    kind, sep, rest = path.partition("/")
    levels = _PLACE_LEVELS.get(kind)
    if sep and levels is not None:
        parts = rest.split("/", levels)
        if len(parts) > levels:
            return f"{kind}:{'/'.join(parts[:levels])}/{scope_from_path(parts[levels])}"
    if not sep:
        return unquote(kind, errors="surrogatepass")
    if "/" in rest:
        return f"{kind}:{rest}"
    return f"{unquote(kind, errors='surrogatepass')}:{unquote(rest, errors='surrogatepass')}"


def constraint_topic(
    scope: str, constraint_type: str | None = None, prefix: str = DEFAULT_PREFIX
) -> str:
    """The retained topic for constraints on ``scope``.

    Without ``constraint_type`` it is the single per-scope topic of docs/protocol.md
    (``cascade/constraints/task/api_%2A``). With it, one more level names the type
    (``cascade/constraints/task/api_%2A/pause``), so each (scope, type) is set and
    cleared on its own topic; readers take scope and type from the topic
    (:func:`~cascade.interfaces.constraint_from_topic`, which refuses a payload naming
    others) and accept both forms.
    """
    base = f"{prefix}/constraints/{scope_to_path(scope)}"
    return f"{base}/{constraint_type}" if constraint_type else base


def constraints_filter(prefix: str = DEFAULT_PREFIX) -> str:
    """The filter over every constraint topic."""
    return f"{prefix}/constraints/#"
