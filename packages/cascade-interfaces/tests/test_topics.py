"""Topic builders, id sanitizing and the scope ↔ topic mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascade.interfaces import (
    InvalidTopicError,
    constraint_topic,
    constraints_filter,
    events_topic,
    heartbeat_topic,
    same_source,
    split_telemetry_topic,
    status_filter,
    status_topic,
    telemetry_filter,
    topic_matches,
)
from cascade.interfaces._topics import scope_from_path, scope_to_path
from cascade.interfaces.connector_kit import sanitize_segment, validate_prefix, validate_topic


def test_builders_follow_protocol() -> None:
    """Every topic of PROTOCOL.md, with the default and a custom prefix."""
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
    """``.../{kind}/{source}``, the source sanitized; split back into kind and source, the
    unsourced layout with no source, anything else not telemetry."""
    topic = events_topic("o", "p", "r", source="host/1")
    assert topic == "cascade/telemetry/o/p/r/events/host_1"
    assert split_telemetry_topic("o/p/r/events/host_1") == ("events", "host_1")
    assert split_telemetry_topic("o/p/r/heartbeat") == ("heartbeat", None)
    assert split_telemetry_topic("o/p/r/snapshot/h") == ("snapshot", "h")
    assert split_telemetry_topic("o/p/r/events/events") == ("events", "events")
    for other in ("o/p/r", "o/p/r/logs", "o/p/r/events/h/deeper", "o/p/r/other/h"):
        assert split_telemetry_topic(other) is None


def test_a_claimed_source_is_the_levels_when_it_sanitizes_to_it() -> None:
    """A level is the sanitized source: ``host/1`` claims ``host_1``'s level; nothing else does."""
    assert same_source("host-1", "host-1")
    assert same_source("host/1", "host_1")
    assert not same_source("host-2", "host-1")
    assert not same_source("host_1", "host-1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a/b", "a_b"),
        ("a+b#c", "a_b_c"),
        ("x\x00\x01\x7f\x9f", "x____"),
        ("", "_"),
        ("$host-é", "$host-é"),
        ("run\n", "run_"),
        ("\ud800", "_"),
        ("a\ufffe", "a_"),
    ],
)
def test_sanitize_segment(value: str, expected: str) -> None:
    """Separators, wildcards, NUL, control and non-characters are replaced."""
    assert sanitize_segment(value) == expected


@given(st.text())
def test_sanitized_id_is_exactly_one_level(value: str) -> None:
    """No id can add levels or wildcards: the built topic is valid and has its six levels."""
    topic = events_topic(value, value, value)
    validate_topic(topic)
    assert len(topic.split("/")) == 6
    assert topic_matches("cascade/telemetry/+/+/+/events", topic)


@given(st.text(min_size=1))
def test_any_scope_round_trips(scope: str) -> None:
    """Every scope maps to a valid topic and back to itself."""
    path = scope_to_path(scope)
    validate_topic(constraint_topic(scope, "pause"))
    assert scope_from_path(path) == scope
    assert len(path.split("/")) <= 2


def test_plain_scopes_keep_the_existing_form() -> None:
    """Scopes of ordinary characters map as the existing tools map them; odd ones are escaped,
    and so are the characters RabbitMQ's MQTT plugin does not carry unchanged."""
    assert scope_to_path("task:load_daily") == "task/load_daily"
    assert scope_to_path("task:a/b") == "task/a%2Fb"
    assert scope_to_path("task:api_*") == "task/api_%2A"
    assert scope_to_path("task:etl.load_?") == "task/etl%2Eload_?"
    assert scope_from_path("task/api_*") == "task:api_*"  # as an existing tool wrote it
    assert scope_from_path("task/a/b") == "task:a/b"  # as an existing tool would have written it


@pytest.mark.parametrize("prefix", ["", "$SYS", "/a", "a/", "a/+", "a#"])
def test_bad_prefixes_rejected(prefix: str) -> None:
    """A prefix must be a plain topic name."""
    with pytest.raises(InvalidTopicError):
        validate_prefix(prefix)


def test_topic_size_limit() -> None:
    """Topics longer than MQTT's 65,535 bytes are refused."""
    with pytest.raises(InvalidTopicError, match="65535"):
        validate_topic("a" * 65536)
