"""topic_matches follows MQTT §4.7 exactly, checked by the spec's examples and against paho."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from cascade.interfaces import InvalidTopicError, topic_matches

# (filter, topic, matches): the examples of MQTT 3.1.1 §4.7 and 5.0 §4.7, and edge cases.
SPEC_TABLE = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+", "sport", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+/tennis/#", "sport/tennis/player1", True),
    ("sport/+/player1", "sport/tennis/player1", True),
    ("#", "$SYS/broker", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("a/$b/+", "a/$b/c", True),
    ("+/$b", "a/$b", True),
    ("sport", "Sport", False),
    ("sport/tennis", "sport/tennis/", False),
    ("sport//tennis", "sport//tennis", True),
    ("sport/+/tennis", "sport//tennis", True),
    ("//", "//", True),
    ("+/+/+", "//", True),
    ("a/b", "a/b", True),
    ("a/b", "a", False),
    ("a", "a/b", False),
    ("$share/group/sport/#", "sport/tennis", True),
    ("$share/group/+", "$SYS", False),
    ("$share/g/a/+", "a/b", True),
    ("$share/g/a/+", "a/b/c", False),
]


def _check_table(matcher: Callable[[str, str], bool]) -> list[tuple[str, str, bool]]:
    return [row for row in SPEC_TABLE if matcher(row[0], row[1]) != row[2]]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), SPEC_TABLE)
def test_spec_examples(topic_filter: str, topic: str, expected: bool) -> None:
    """Every example from the spec gives the spec's answer."""
    assert topic_matches(topic_filter, topic) is expected


def _no_dollar_rule(f: str, t: str) -> bool:
    return topic_matches(f, "x" + t[1:] if t.startswith("$") else t)


def _hash_needs_child(f: str, t: str) -> bool:
    return topic_matches(f, t) and not (f.endswith("/#") and f[:-2] == t)


def _plus_skips_empty(f: str, t: str) -> bool:
    return topic_matches(f, t) and not any(
        fl == "+" and tl == "" for fl, tl in zip(f.split("/"), t.split("/"), strict=False)
    )


def _prefix_match(f: str, t: str) -> bool:
    fl, tl = f.split("/"), t.split("/")
    return all(a in ("+", "#") or a == b for a, b in zip(fl, tl, strict=False))


@pytest.mark.parametrize(
    "broken", [_no_dollar_rule, _hash_needs_child, _plus_skips_empty, _prefix_match]
)
def test_table_catches_broken_matchers(broken: Callable[[str, str], bool]) -> None:
    """The table is not vacuous: each deliberately broken matcher disagrees with it somewhere."""
    assert _check_table(broken)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "",
        "a/#/b",
        "a#",
        "#/",
        "a/b+",
        "+a",
        "a/++",
        "$share/g",
        "$share//a",
        "$share/g/",
        "$share/+/a",
        "a\x00b",
    ],
)
def test_invalid_filters_raise(topic_filter: str) -> None:
    """Invalid filters raise a clear InvalidTopicError."""
    with pytest.raises(InvalidTopicError, match=r"filter|shared"):
        topic_matches(topic_filter, "a/b")


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00"])
def test_invalid_topic_names_raise(topic: str) -> None:
    """Topic names with wildcards, NUL, or none at all raise InvalidTopicError."""
    with pytest.raises(InvalidTopicError, match="topic name"):
        topic_matches("#", topic)


_LEVELS = st.sampled_from(["a", "b", "sport", "", "$SYS", "$x", "x$", "é"])
_topics = st.lists(_LEVELS, min_size=1, max_size=5).map("/".join).filter(bool)


@st.composite
def _filters_near(draw: st.DrawFn, topic: str) -> str:
    """Filters built from the topic (often matching) or from random levels (often not)."""
    levels = topic.split("/") if draw(st.booleans()) else draw(st.lists(_LEVELS, min_size=1))
    levels = [draw(st.sampled_from([level, level, "+", "a", ""])) for level in levels]
    cut = draw(st.integers(min_value=0, max_value=len(levels)))
    if draw(st.booleans()):
        levels = [*levels[:cut], "#"]
    topic_filter = "/".join(levels)
    assume(topic_filter)
    return topic_filter


@settings(max_examples=2_000, deadline=None)
@given(data=st.data(), topic=_topics)
def test_agrees_with_paho_oracle(data: st.DataObject, topic: str) -> None:
    """On 2,000 generated valid filter/topic pairs, the answer is paho's."""
    topic_filter = data.draw(_filters_near(topic))
    assert topic_matches(topic_filter, topic) is topic_matches_sub(topic_filter, topic)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), topic=_topics, group=st.sampled_from(["g", "workers", "a$b"]))
def test_shared_subscription_matches_as_its_filter(
    data: st.DataObject, topic: str, group: str
) -> None:
    """``$share/<group>/<filter>`` matches exactly what ``<filter>`` matches."""
    topic_filter = data.draw(_filters_near(topic))
    assert topic_matches(f"$share/{group}/{topic_filter}", topic) is topic_matches(
        topic_filter, topic
    )
