"""Topic builders, id encoding and the scope ↔ topic mapping."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cascade.interfaces import (
    InvalidMessageError,
    InvalidTopicError,
    constraint_topic,
    constraint_topic_key,
    constraints_filter,
    decode_level,
    encode_level,
    events_topic,
    heartbeat_topic,
    same_source,
    split_run_topic,
    status_filter,
    status_topic,
    telemetry_filter,
    topic_matches,
    validate_id,
    validate_prefix,
    validate_scope,
    validate_topic,
)
from cascade.interfaces.logs import logs_topic


def test_builders_follow_protocol() -> None:
    """Every topic of docs/protocol.md, with the default and a custom prefix."""
    assert events_topic("local", "default", "r1") == "cascade/telemetry/local/default/r1/events"
    assert heartbeat_topic("o", "p", "r", prefix="x/y") == "x/y/telemetry/o/p/r/heartbeat"
    assert status_topic("host-42") == "cascade/status/host-42"
    assert status_filter() == "cascade/status/+"
    assert constraints_filter("acme") == "acme/constraints/#"
    assert constraint_topic("global") == "cascade/constraints/global"
    assert constraint_topic("task:api_*") == "cascade/constraints/task/api_%2A"
    assert constraint_topic("task:api_*", "pause") == "cascade/constraints/task/api_%2A/pause"
    assert telemetry_filter(project_id="p") == "cascade/telemetry/+/p/+/#"
    events = telemetry_filter("o", "p", "r", "events")
    assert topic_matches(events, events_topic("o", "p", "r"))
    assert topic_matches(events, events_topic("o", "p", "r", source="host-1"))
    assert not topic_matches(events, heartbeat_topic("o", "p", "r", source="host-1"))


def test_the_sourced_layout_names_the_source_as_its_last_level() -> None:
    """``.../{kind}/{source}``, the source encoded; split back into kind and source, the
    unsourced layout with no source, as a logs topic is, anything else neither."""
    topic = events_topic("o", "p", "r", source="host/1")
    assert topic == "cascade/telemetry/o/p/r/events/host%2F1"
    assert split_run_topic(topic) == ("events", "host%2F1")
    assert split_run_topic("cascade/telemetry/o/p/r/heartbeat") == ("heartbeat", None)
    assert split_run_topic("acme/cascade/telemetry/o/p/r/snapshot/h", "acme/cascade") == (
        "snapshot",
        "h",
    )
    assert split_run_topic("cascade/telemetry/o/p/r/events/events") == ("events", "events")
    assert split_run_topic(logs_topic("o", "p", "r")) == ("logs", None)
    assert split_run_topic(logs_topic("o", "p", "r", source="host/1")) == ("logs", "host%2F1")
    for other in (
        "cascade/telemetry/o/p/r",
        "cascade/telemetry/o/p/r/logs",
        "cascade/telemetry/o/p/r/events/h/deeper",
        "cascade/telemetry/o/p/r/other/h",
        "cascade/logs/o/p",
        "cascade/logs/o/p/r/h/deeper",
        "cascade/status/h",
        "cascadex/telemetry/o/p/r/events",
        "other/telemetry/o/p/r/events",
    ):
        assert split_run_topic(other) is None, other


def test_a_claimed_source_is_the_levels_when_it_encodes_to_it() -> None:
    """A level is the encoded source, or the existing tools' ``_``-replaced one: ``host/1``
    claims ``host%2F1`` and ``host_1``; ``a.b`` claims ``a%2Eb`` (and ``a.b``, as the
    existing tools wrote it); nothing else does."""
    assert same_source("host-1", "host-1")
    assert same_source("host/1", "host%2F1")
    assert same_source("host/1", "host_1")
    assert same_source("worker1.example.com", "worker1%2Eexample%2Ecom")
    assert same_source("worker1.example.com", "worker1.example.com")
    assert not same_source("host-2", "host-1")
    assert not same_source("host_1", "host-1")
    assert not same_source("host_1", "host%2F1")
    assert not same_source("a%2Eb", "a%2Eb")  # the level of a%2Eb is a%252Eb
    assert same_source("a%2Eb", "a%252Eb")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("worker1.example.com", "worker1%2Eexample%2Ecom"),
        ("team.one", "team%2Eone"),
        ("a/b", "a%2Fb"),
        ("a+b#c", "a%2Bb%23c"),
        ("x\x00\x01\x7f\x9f", "x%00%01%7F%C2%9F"),
        ("$host-é", "$host-é"),
        ("run\n", "run%0A"),
        ("my run\u00a0\u2003", "my%20run%C2%A0%E2%80%83"),
        ("a*b>c", "a%2Ab%3Ec"),
        ("100%", "100%25"),
        ("a\ufffe", "a%EF%BF%BE"),
        ("a\ufdd0", "a%EF%B7%90"),
        ("\ud800", "%ED%A0%80"),
    ],
)
def test_encode_level(value: str, expected: str) -> None:
    """``%``, ``.``, whitespace, ``*``, ``>``, separators, wildcards, NUL, controls and
    non-characters are percent-encoded as their UTF-8 bytes, uppercase; nothing else is."""
    assert encode_level(value) == expected


def _legacy(value: str) -> str:
    """The level the existing tools build: ``/ + #``, controls, non-characters → ``_``."""
    return "".join(
        "_"
        if c in "/+#"
        or ord(c) < 0x20
        or 0x7F <= ord(c) <= 0x9F
        or 0xD800 <= ord(c) <= 0xDFFF
        or 0xFDD0 <= ord(c) <= 0xFDEF
        or (ord(c) & 0xFFFE) == 0xFFFE
        else c
        for c in value
    )


_PLAIN = st.text(
    st.characters(blacklist_characters="%.*>", blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
    min_size=1,
)


@given(_PLAIN)
def test_the_existing_tools_plain_ids_give_the_same_topics(value: str) -> None:
    """An id without ``% . * >``, whitespace or controls is its own level, as the existing
    tools build it: every topic they read on mosquitto stays the same."""
    if "/" in value or "+" in value or "#" in value or _legacy(value) != value:
        return
    assert encode_level(value) == value == _legacy(value)
    assert events_topic(value, value, value, source=value) == "/".join(
        ["cascade", "telemetry", value, value, value, "events", value]
    )


_PLAIN_IDS = ["host-123", "acme", "default", "local", "0" * 32, "host-42_a", "ÿé$"]


@pytest.mark.parametrize("value", _PLAIN_IDS)
def test_plain_ids_are_unchanged(value: str) -> None:
    """The ids Cascade and the existing tools use (``host-123``, orgs, 32-hex run ids)."""
    assert encode_level(value) == value
    assert decode_level(value) == value
    assert status_topic(value) == f"cascade/status/{value}"


@given(st.text(min_size=1))
def test_any_valid_id_round_trips(value: str) -> None:
    """Every valid id is exactly one level that decodes back to it, and holds none of the
    characters any supported broker refuses or maps (``.``, whitespace, ``*``, ``>``)."""
    try:
        validate_id(value, "id")
    except ValueError:
        return
    level = encode_level(value)
    assert decode_level(level) == value
    assert not any(c in "/+#" for c in level)
    assert not any(c in ".*>" or c.isspace() for c in level)
    assert level.isprintable() or not value.isprintable()


@pytest.mark.parametrize("level", ["100%", "a%zz", "%", "%FF", "%C3"])
def test_a_level_that_is_no_encoding_is_read_as_written(level: str) -> None:
    """A stray ``%`` or bytes that are not UTF-8: the level is the id as written."""
    assert decode_level(level) == level


@given(st.text())
def test_encoded_id_is_exactly_one_level(value: str) -> None:
    """No id can add levels or wildcards: the built topic is valid and has its six levels."""
    topic = events_topic(value, value, value)
    validate_topic(topic)
    assert len(topic.split("/")) == 6
    assert topic_matches("cascade/telemetry/+/+/+/events", topic)


@given(st.text(min_size=1))
def test_any_scope_round_trips(rest: str) -> None:
    """Every scope an engine applies maps to a valid topic of at most two levels below
    ``constraints/``, and back to itself."""
    scope = f"task:{rest}"
    try:
        validate_scope(scope)
    except InvalidMessageError:
        assume(False)
    topic = constraint_topic(scope)
    validate_topic(constraint_topic(scope, "pause"))
    assert constraint_topic_key(topic).scope == scope
    assert constraint_topic_key(constraint_topic(scope, "pause")) == (scope, "pause")
    assert len(topic.split("/")) <= 4


def test_plain_scopes_keep_the_existing_form() -> None:
    """Scopes of ordinary characters map as the existing tools map them; odd ones are escaped,
    and so are the characters RabbitMQ's MQTT plugin does not carry unchanged."""
    assert constraint_topic("task:load_daily") == "cascade/constraints/task/load_daily"
    assert constraint_topic("task:a/b") == "cascade/constraints/task/a%2Fb"
    assert constraint_topic("task:api_*") == "cascade/constraints/task/api_%2A"
    assert constraint_topic("task:etl.load_?") == "cascade/constraints/task/etl%2Eload_?"
    # as an existing tool wrote it, and as one would have written a scope with a slash
    assert constraint_topic_key("cascade/constraints/task/api_*").scope == "task:api_*"
    assert constraint_topic_key("cascade/constraints/task/a/b").scope == "task:a/b"


@pytest.mark.parametrize("prefix", ["", "$SYS", "/a", "a/", "a/+", "a#"])
def test_bad_prefixes_rejected(prefix: str) -> None:
    """A prefix must be a plain topic name."""
    with pytest.raises(InvalidTopicError):
        validate_prefix(prefix)


def test_topic_size_limit() -> None:
    """Topics longer than MQTT's 65,535 bytes are refused."""
    with pytest.raises(InvalidTopicError, match="65535"):
        validate_topic("a" * 65536)


def test_every_ascii_character_is_kept_or_encoded_as_documented() -> None:
    """The plain-id fast path keeps exactly the characters the rule keeps: ``%``, ``.``,
    ``*``, ``>``, ``/``, ``+``, ``#``, whitespace, NUL and the controls are encoded."""
    encoded = set("%.*>/+#") | {chr(code) for code in range(0x21)} | {"\x7f"}
    for code in range(128):
        char = chr(code)
        expected = f"%{code:02X}" if char in encoded else char
        assert encode_level(f"host-{char}-1") == f"host-{expected}-1", repr(char)
