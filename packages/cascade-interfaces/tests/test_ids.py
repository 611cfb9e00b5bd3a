"""Ids that cannot form a topic are refused where they are given, naming the field."""

from __future__ import annotations

import pytest

from cascade.connector_kit import default_org_id, default_project_id
from cascade.connector_kit.testing import InMemoryConnector
from cascade.interfaces import (
    InvalidIdError,
    heartbeat_topic,
    status_topic,
    validate_id,
    validate_prefix,
)

MAX_ID_BYTES = 1024  # the protocol's bound, as docs/protocol.md states it


@pytest.mark.parametrize("value", ["engine-1", "a/b+c#", "ünïcødé-✓", "x" * MAX_ID_BYTES])
def test_ids_that_fit_pass_unchanged(value: str) -> None:
    """Any non-empty UTF-8 id up to the limit passes; topic levels encode wildcards."""
    assert validate_id(value, "source_id") == value


def test_the_limit_counts_utf8_bytes() -> None:
    """1,024 bytes, not characters: 342 three-byte characters are one too many."""
    assert validate_id("€" * 341, "org_id")
    with pytest.raises(InvalidIdError, match=r"org_id is 1,026 bytes long; at most 1,024"):
        validate_id("€" * 342, "org_id")


def test_a_70k_id_is_refused_naming_the_field() -> None:
    """The id that used to kill the connector's background task."""
    with pytest.raises(ValueError, match=r"^source_id is 70,000 bytes long") as caught:
        validate_id("x" * 70_000, "source_id")
    assert caught.value.field == "source_id"  # type: ignore[attr-defined]
    assert len(str(caught.value)) < 200  # a preview, not the whole id


def test_a_lone_surrogate_is_refused_naming_field_and_position() -> None:
    """What os.environ and sys.argv make of bytes that are not UTF-8."""
    with pytest.raises(
        InvalidIdError, match=r"project_id is not valid UTF-8: '\\udcff' at position 4"
    ):
        validate_id("acme\udcff", "project_id")


@pytest.mark.parametrize("value", ["", None, 42])
def test_empty_or_not_a_string_is_refused(value: object) -> None:
    """Nothing to put in a topic level."""
    with pytest.raises(InvalidIdError, match="source_id"):
        validate_id(value, "source_id")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "read"),
    [("CASCADE_ORG_ID", default_org_id), ("CASCADE_PROJECT_ID", default_project_id)],
)
def test_a_bad_environment_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, read: object
) -> None:
    """A value from the environment says which variable it came from."""
    monkeypatch.setenv(variable, "acme\udcff")  # the byte 0xff, as os.environ decodes it
    with pytest.raises(InvalidIdError, match=rf"not valid UTF-8.*\(from \${variable}\)") as caught:
        read()  # type: ignore[operator]
    assert caught.value.env == variable
    monkeypatch.setenv(variable, "y" * (MAX_ID_BYTES + 1))
    with pytest.raises(InvalidIdError, match=rf"1,025 bytes long.*\(from \${variable}\)"):
        read()  # type: ignore[operator]


def test_unset_or_empty_variables_give_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/protocol.md's defaults: local / default."""
    monkeypatch.setenv("CASCADE_ORG_ID", "")
    monkeypatch.delenv("CASCADE_PROJECT_ID", raising=False)
    assert (default_org_id(), default_project_id()) == ("local", "default")


@pytest.mark.parametrize("prefix", ["p" * (MAX_ID_BYTES + 1), "acme/\udcff"])
def test_the_topic_prefix_obeys_the_same_limits(prefix: str) -> None:
    """A prefix is refused as ``topic_prefix``, like an id."""
    with pytest.raises(InvalidIdError, match=r"^topic_prefix "):
        validate_prefix(prefix)


def test_the_longest_topic_stays_far_below_the_mqtt_limit() -> None:
    """Every id and the prefix at the limit: the longest topic is a few KB, not 65,535 bytes."""
    big = "€" * (MAX_ID_BYTES // 3)
    prefix = validate_prefix("p" * MAX_ID_BYTES)
    run_id = "0" * 32
    longest = heartbeat_topic(big, big, run_id, prefix)
    assert len(longest.encode()) < 4 * MAX_ID_BYTES < 65_535 // 10
    assert len(status_topic(big, prefix).encode()) < 3 * MAX_ID_BYTES


def test_the_in_memory_connector_refuses_a_bad_source_id() -> None:
    """The test double validates like the real connector."""
    with pytest.raises(InvalidIdError, match=r"^source_id "):
        InMemoryConnector(source_id="x" * 70_000)
