"""`status` and `watch` tell the truth: times, far expiries, offline engines, the connection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.cli.rendering import TimeFormat
from cascade.connector_kit import Subscription
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Connector,
    MessageCallback,
    StatusMessage,
    SyncCallback,
    encode_payload,
    status_topic,
)
from cascade.reader import DEFAULT_KEEP_FOR, DEFAULT_KEEP_RUNS, ReaderModel

Invoke = Callable[..., Result]
PublishRetained = Callable[[str, bytes], None]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _retain_status(
    publish_retained: PublishRetained, source: str, status: str, ago: float | None
) -> None:
    message = StatusMessage(
        status=status,  # type: ignore[arg-type]
        source=source,
        session=1,
        ts=None if ago is None else _iso(time.time() - ago),
    )
    publish_retained(status_topic(source), encode_payload(message))


def test_status_last_seen_is_when_the_engine_spoke(
    invoke: Invoke, publish_retained: PublishRetained
) -> None:
    """An engine that shut down 5 minutes ago is last seen 5 minutes ago, not just now."""
    _retain_status(publish_retained, "old-engine", "offline", 300)
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "old-engine" in result.output
    assert "5m00s ago" in result.output or "5m01s ago" in result.output
    assert "0.0s ago" not in result.output


def test_status_far_expiry(invoke: Invoke, publish_retained: PublishRetained) -> None:
    """A valid constraint expiring at 1e14 is listed as never expiring; status exits 0."""
    raw = b'{"id":"p","scope":"global","type":"pause","params":{},"expires_at":1e14}'
    publish_retained("cascade/constraints/global/pause", raw)
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "never (beyond year 9999)" in result.output
    data = json.loads(invoke("status", "--json").output)
    assert data["constraints"][0]["expires_at"] is None


def test_status_hides_long_offline_engines(
    invoke: Invoke, publish_retained: PublishRetained
) -> None:
    """Offline for longer than --offline-max-age (default 1h): hidden and counted unless --all."""
    _retain_status(publish_retained, "gone-long-ago", "offline", 7200)
    _retain_status(publish_retained, "gone-recently", "offline", 60)
    _retain_status(publish_retained, "alive", "online", 7200)
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "gone-recently" in result.output
    assert "alive" in result.output
    assert "gone-long-ago" not in result.output
    assert "1 offline for more than 1h00m hidden (--all shows them)" in result.output
    assert "gone-long-ago" in invoke("status", "--all").output
    narrow = invoke("status", "--offline-max-age", "30s", "--json")
    data = json.loads(narrow.output)
    assert sorted(e["source"] for e in data["engines"]) == ["alive"]
    assert data["hidden_engines"] == 2


def test_bad_age_is_a_usage_error(invoke: Invoke) -> None:
    """An age that is not one exits 2 with the accepted forms."""
    result = invoke("status", "--offline-max-age", "soon")
    assert result.exit_code == 2
    assert "90s, 15m, 2h or 7d" in result.output


def test_status_names_its_time_zone(invoke: Invoke) -> None:
    """The screen says which zone its times are in."""
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "times in " in result.output


class _LosingConnector(InMemoryConnector):
    """Loses its connection right after the view subscribed to everything."""

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> Subscription:
        handle = await super().subscribe(topic_filter, callback, on_sync=on_sync)
        if "/constraints/" in topic_filter:
            await self.crash()
        return handle


def _watch_on_terminal(factory: Callable[[BrokerOptions], Connector], *args: str) -> str:
    console = Console(force_terminal=True, width=160, record=True)
    context = CliContext(connector_factory=factory, console=console)
    result = CliRunner().invoke(app, ["watch", *args], obj=context)
    assert result.exit_code == 0, result.output
    return console.export_text()


def test_watch_shows_a_lost_connection(broker: InMemoryBroker) -> None:
    """When the broker connection is lost, the view says so instead of looking fine."""

    def factory(options: BrokerOptions) -> Connector:
        return _LosingConnector(broker, presence=False)

    text = _watch_on_terminal(factory, "--duration", "0.1")
    assert "DISCONNECTED from localhost:1883 since" in text
    assert "reconnecting" in text


def test_watch_shows_a_live_connection(broker: InMemoryBroker) -> None:
    """A healthy connection is named, with the zone of the times shown."""

    def factory(options: BrokerOptions) -> Connector:
        return InMemoryConnector(broker, presence=False)

    text = _watch_on_terminal(factory, "--duration", "0.1")
    assert "connected to localhost:1883" in text
    assert "DISCONNECTED" not in text
    assert "times in " in text


def test_watch_rejects_bad_bounds(invoke: Invoke) -> None:
    """--keep-runs below 0 and a --keep-for that is not an age are usage errors."""
    assert invoke("watch", "--keep-runs", "-1").exit_code == 2
    assert invoke("watch", "--keep-for", "forever").exit_code == 2


def test_documented_defaults(invoke: Invoke) -> None:
    """The defaults the README states: --offline-max-age 1h, --keep-runs 20, --keep-for 10m."""
    assert ReaderModel().keep_runs == DEFAULT_KEEP_RUNS == 20
    assert DEFAULT_KEEP_FOR == 600
    help_text = " ".join(invoke("watch", "--help").output.split())
    for option in ("--keep-runs", "--keep-for", "--offline-max-age", "--all"):
        assert option in help_text


def test_time_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen's zone is the local one: TZ=UTC gives UTC, and it is named."""
    winter = 1_800_000_000.0  # January 2027
    try:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert TimeFormat(winter).zone == "UTC"
        monkeypatch.setenv("TZ", "Europe/Paris")
        time.tzset()
        times = TimeFormat(winter)
        assert times.zone == "CET (UTC+01:00)"
        assert times.at(winter) == "09:00:00"
    finally:
        monkeypatch.undo()
        time.tzset()
