"""`cascade forget` clears retained statuses: one source's, or the offline ones older than AGE."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from typer.testing import Result

from cascade.cli.commands.forget._forget import RetainedStatus, stale_statuses
from cascade.connector_kit.testing import InMemoryBroker
from cascade.interfaces import StatusMessage, encode_payload, status_topic
from cascade.interfaces.summaries import EngineSummary, SummaryRun, TaskTally, summary_messages

Invoke = Callable[..., Result]
PublishRetained = Callable[[str, bytes], None]


def _retain(publish: PublishRetained, source: str, status: str, ago: float | None) -> None:
    stamp = None if ago is None else datetime.fromtimestamp(time.time() - ago, timezone.utc)
    message = StatusMessage(
        status=status,  # type: ignore[arg-type]
        source=source,
        session=1,
        ts=None if stamp is None else stamp.isoformat(),
    )
    publish(status_topic(source), encode_payload(message))


def test_forget_one_source(
    invoke: Invoke, publish_retained: PublishRetained, broker: InMemoryBroker
) -> None:
    """An offline source's retained status is cleared; the command says what it forgot."""
    _retain(publish_retained, "gone", "offline", 10)
    result = invoke("forget", "gone")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "forgot 1: gone"
    assert broker.retained(status_topic("gone")) is None


def test_forget_clears_the_summaries_of_its_runs_places_too(
    invoke: Invoke, publish_retained: PublishRetained, broker: InMemoryBroker
) -> None:
    """A source's summaries per org and project (as its own lists them) go with its own."""
    _retain(publish_retained, "gone", "offline", 10)
    listed = [
        SummaryRun(run_id=f"r{n}", org_id=org, project_id="etl", status="Succeeded",
                   started="2026-11-27T10:00:00+00:00", tasks=TaskTally(completed=1))
        for n, org in enumerate(("acme", "globex"))
    ]  # fmt: skip
    sent = summary_messages(EngineSummary(source="gone", listed=listed))
    for topic, summary in sent:
        publish_retained(topic, encode_payload(summary))
    assert len(sent) == 3
    result = invoke("forget", "gone")
    assert result.exit_code == 0, result.output
    assert [topic for topic, _ in sent if broker.retained(topic) is not None] == []


def test_forget_unknown_source_fails(invoke: Invoke) -> None:
    """A source with no retained status is an error (exit 1), so a typo is noticed."""
    result = invoke("forget", "nobody")
    assert result.exit_code == 1
    assert "no status retained for 'nobody'" in result.output


def test_forget_online_source_needs_force(
    invoke: Invoke, publish_retained: PublishRetained, broker: InMemoryBroker
) -> None:
    """An online source is kept unless --force."""
    _retain(publish_retained, "alive", "online", 10)
    result = invoke("forget", "alive")
    assert result.exit_code == 1
    assert "'alive' is online" in result.output
    assert broker.retained(status_topic("alive")) is not None
    assert invoke("forget", "alive", "--force").exit_code == 0
    assert broker.retained(status_topic("alive")) is None


def test_forget_offline_older_than(
    invoke: Invoke, publish_retained: PublishRetained, broker: InMemoryBroker
) -> None:
    """Offline statuses stamped before the age (or not stamped) go; recent and online stay."""
    _retain(publish_retained, "old", "offline", 7200)
    _retain(publish_retained, "unstamped", "offline", None)
    _retain(publish_retained, "recent", "offline", 60)
    _retain(publish_retained, "alive", "online", 7200)
    result = invoke("forget", "--offline-older-than", "1h")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "forgot 2: old, unstamped"
    assert sorted(broker.retained_topics) == [status_topic("alive"), status_topic("recent")]
    again = invoke("forget", "--offline-older-than", "1h")
    assert (again.exit_code, again.output.strip()) == (0, "nothing to forget")


def test_forget_usage_errors(invoke: Invoke) -> None:
    """Neither or both of SOURCE and --offline-older-than, or a bad age: exit 2."""
    assert invoke("forget").exit_code == 2
    assert invoke("forget", "x", "--offline-older-than", "1h").exit_code == 2
    assert invoke("forget", "--offline-older-than", "a while").exit_code == 2


def test_malformed_status_counts_as_old() -> None:
    """A retained status that is not one is forgotten by any age."""
    malformed = RetainedStatus("cascade/status/x", None)
    assert stale_statuses([malformed], 1e9, time.time()) == [malformed]
