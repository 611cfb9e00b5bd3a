"""pause, limit and resume publish retained constraints per (scope, type), validated first."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker
from cascade.interfaces import decode_constraint


def _plain(raw: bytes) -> dict[str, object]:
    constraint = decode_constraint(raw)
    return {
        "scope": constraint.scope,
        "type": constraint.type,
        "params": constraint.params,
        "expires_at": constraint.expires_at,
    }


def test_pause_publishes_retained_pause(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """`cascade pause task:api_*` leaves a retained pause on the scope's pause topic."""
    result = invoke("pause", "task:api_*")
    assert result.exit_code == 0, result.output
    assert _plain(broker.retained("cascade/constraints/task/api_%2A/pause") or b"") == {
        "scope": "task:api_*",
        "type": "pause",
        "params": {},
        "expires_at": None,
    }
    assert all(m.qos == 1 and m.retain for m in broker.history)


def test_pause_defaults_to_global_with_ttl(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """Without a scope the pause is global; --ttl sets an expiry in the future."""
    result = invoke("pause", "--ttl", "60")
    assert result.exit_code == 0, result.output
    constraint = decode_constraint(broker.retained("cascade/constraints/global/pause") or b"")
    assert constraint.expires_at is not None


def test_limit_with_both_flags_keeps_both(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """Concurrency and rate limits on one scope live on topics of their own."""
    result = invoke("limit", "task:db", "--concurrency", "2", "--rate", "10/m")
    assert result.exit_code == 0, result.output
    assert (
        decode_constraint(broker.retained("cascade/constraints/task/db/concurrency") or b"").limit
        == 2
    )
    rate = decode_constraint(broker.retained("cascade/constraints/task/db/rate_limit") or b"")
    assert rate.params == {"rate": "10/m"}


def test_resume_type_clears_only_that_type(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """`resume --type pause` clears the pause and leaves the limit."""
    assert invoke("pause", "task:db").exit_code == 0
    assert invoke("limit", "task:db", "--concurrency", "1").exit_code == 0
    result = invoke("resume", "task:db", "--type", "pause")
    assert result.exit_code == 0, result.output
    assert broker.retained("cascade/constraints/task/db/pause") is None
    assert broker.retained("cascade/constraints/task/db/concurrency") is not None


def test_resume_clears_everything_on_scope_including_legacy_topic(
    invoke: Callable[..., Result],
    broker: InMemoryBroker,
    publish_retained: Callable[[str, bytes], None],
) -> None:
    """A bare `resume` clears every type, and a constraint an older tool set on the scope topic."""
    assert invoke("pause").exit_code == 0
    assert invoke("limit", "global", "--rate", "5/s").exit_code == 0
    legacy = b'{"id": "pause-global", "scope": "global", "type": "pause", "params": {}}'
    publish_retained("cascade/constraints/global", legacy)
    assert invoke("resume").exit_code == 0
    assert broker.retained_topics == []


def test_resume_clears_a_glob_pause_on_the_unescaped_topic_of_earlier_versions(
    invoke: Callable[..., Result],
    broker: InMemoryBroker,
    publish_retained: Callable[[str, bytes], None],
) -> None:
    """Before '*' was escaped, `cascade pause task:api_*` retained on `task/api_*/pause`."""
    old = b'{"id": "pause-task:api_*", "scope": "task:api_*", "type": "pause", "params": {}}'
    publish_retained("cascade/constraints/task/api_*/pause", old)
    assert invoke("pause", "task:api_*").exit_code == 0
    assert invoke("resume", "task:api_*").exit_code == 0
    assert broker.retained_topics == []


def test_resume_type_leaves_legacy_topic_of_other_type(
    invoke: Callable[..., Result],
    broker: InMemoryBroker,
    publish_retained: Callable[[str, bytes], None],
) -> None:
    """`resume --type pause` does not clear a legacy-topic limit."""
    legacy = b'{"id": "c", "scope": "global", "type": "concurrency", "params": {"limit": 1}}'
    publish_retained("cascade/constraints/global", legacy)
    assert invoke("resume", "--type", "pause").exit_code == 0
    assert broker.retained("cascade/constraints/global") == legacy


def test_resume_clears_legacy_constraint_on_scope_with_slash(
    invoke: Callable[..., Result],
    broker: InMemoryBroker,
    publish_retained: Callable[[str, bytes], None],
) -> None:
    """A constraint an older tool set on `task/a/b` (scope `task:a/b`) is cleared by its scope."""
    legacy = b'{"id": "pause-task:a/b", "scope": "task:a/b", "type": "pause", "params": {}}'
    publish_retained("cascade/constraints/task/a/b", legacy)
    result = invoke("resume", "task:a/b")
    assert result.exit_code == 0, result.output
    assert broker.retained_topics == []


def test_resume_by_payload_scope_leaves_other_scopes_and_types(
    invoke: Callable[..., Result],
    broker: InMemoryBroker,
    publish_retained: Callable[[str, bytes], None],
) -> None:
    """Only constraints whose payload names the scope (and --type) are cleared, wherever placed."""
    pause = b'{"id": "p", "scope": "task:a/pause", "type": "pause", "params": {}}'
    limit = b'{"id": "c", "scope": "task:a/pause", "type": "concurrency", "params": {"limit": 1}}'
    publish_retained("cascade/constraints/task/a/pause", pause)
    publish_retained("cascade/constraints/task/a/pause/x", limit)
    assert invoke("resume", "task:a", "--type", "pause").exit_code == 0
    assert broker.retained("cascade/constraints/task/a/pause") == pause
    assert invoke("resume", "task:a/pause", "--type", "pause").exit_code == 0
    assert broker.retained_topics == ["cascade/constraints/task/a/pause/x"]


def test_a_trigger_is_paused_and_resumed_by_its_scope(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """cascade pause trigger:NAME: a pause retained on the trigger's own topic; resume clears it."""
    result = invoke("pause", "trigger:report_after_etl", "--reason", "db migration")
    assert result.exit_code == 0, result.output
    (topic,) = broker.retained_topics
    assert topic == "cascade/constraints/trigger/report_after_etl/pause"
    assert invoke("resume", "trigger:report_after_etl").exit_code == 0
    assert broker.retained_topics == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["pause", "tasks"], "unknown scope"),
        (["pause", "task:"], "unknown scope"),
        (["pause", "--ttl", "0"], "--ttl"),
        (["pause", "--ttl", "-5"], "--ttl"),
        (["pause", "--ttl", "inf"], "--ttl"),
        (["pause", "--ttl", "nan"], "--ttl"),
        (["pause", "--ttl", "1e16"], "--ttl"),
        (["limit", "task:x", "--rate", "1/s", "--ttl", "1e16"], "--ttl"),
        (["limit", "task:x", "--concurrency", "1", "--ttl", "inf"], "--ttl"),
        (["limit", "task:x", "--concurrency", "3000000000"], "--concurrency"),
        (["pause", "task:" + "x" * 260], "scope is too long"),
        (["limit", "task:" + "x" * 245, "--rate", "1/s"], "scope is too long"),
        (["limit", "task:x"], "--concurrency N, --rate R"),
        (["limit", "task:x", "--concurrency", "-1"], "0 or more"),
        (["limit", "task:x", "--rate", "fast"], "rate"),
        (["limit", "task:x", "--rate", "0/s"], "positive"),
        (["limit", "bad scope", "--concurrency", "1"], "unknown scope"),
        (["limit", "schedule:nightly", "--concurrency", "1"], "paused and resumed, not limited"),
        (["pause", "schedule:night*"], "unknown scope"),
        (["limit", "trigger:report", "--concurrency", "1"], "paused and resumed, not limited"),
        (["pause", "trigger:rep*"], "unknown scope"),
        (["resume", "--type", "stop"], "--type"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(
    invoke: Callable[..., Result], broker: InMemoryBroker, args: list[str], problem: str
) -> None:
    """Invalid input gives a clear message and exit code 2 before anything is sent."""
    result = invoke(*args)
    assert result.exit_code == 2
    assert problem in result.output
    assert broker.history == []


@pytest.mark.parametrize("scope", ["task:\udcff", "task:\x1b[2J", "task:a\x9bb", "task:\x7f"])
def test_scopes_with_control_characters_are_refused(
    invoke: Callable[..., Result], broker: InMemoryBroker, scope: str
) -> None:
    """A scope holding a control character or a lone surrogate (a shell's invalid bytes) is a
    usage error naming it; nothing is published (engines still read such scopes from others)."""
    for args in (["pause", scope], ["limit", scope, "--concurrency", "1"], ["resume", scope]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "a scope is text without control characters" in result.stderr
    assert broker.history == []
