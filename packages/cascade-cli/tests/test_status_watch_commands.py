"""`cascade status` and `cascade watch` read what the broker holds and what arrives."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit import Subscription
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Connector,
    Envelope,
    LifecycleEvent,
    MessageCallback,
    StatusMessage,
    SyncCallback,
    TaskStateEvent,
    constraint_topic,
    encode_payload,
    events_topic,
    status_topic,
)


def test_status_lists_engines_and_constraints(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """Engines with their presence and retained constraints show as tables."""
    publish_retained(
        status_topic("engine-7"),
        encode_payload(StatusMessage(status="online", source="engine-7", session=3)),
    )
    assert invoke("limit", "task:api_*", "--concurrency", "2").exit_code == 0
    result = invoke("status")
    assert result.exit_code == 0, result.output
    for expected in ["engine-7", "online", "task:api_*", "concurrency", "limit=2"]:
        assert expected in result.output


def test_status_json(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """--json prints one object with engines and constraints, every time ISO 8601 with offset."""
    shut_down = StatusMessage.announce("offline", "e", 1, reason="shutdown")
    publish_retained(status_topic("e"), encode_payload(shut_down))
    assert invoke("pause", "task:x", "--ttl", "600").exit_code == 0
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    engine = data["engines"][0]
    assert (engine["source"], engine["status"], engine["reason"]) == ("e", "offline", "shutdown")
    assert engine["last_seen"] == engine["ts"]
    assert datetime.fromisoformat(engine["last_seen"]) == datetime.fromisoformat(shut_down.ts or "")
    assert [(c["scope"], c["type"]) for c in data["constraints"]] == [("task:x", "pause")]
    assert data["constraints"][0]["topic"] == constraint_topic("task:x", "pause")
    expires = datetime.fromisoformat(data["constraints"][0]["expires_at"])
    assert expires.utcoffset() is not None
    assert 590 < expires.timestamp() - time.time() <= 600


class _FeedingConnector(InMemoryConnector):
    """Publishes a short run's telemetry as soon as telemetry is subscribed to."""

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> Subscription:
        handle = await super().subscribe(topic_filter, callback, on_sync=on_sync)
        if "/telemetry/" in topic_filter:
            topic = events_topic("local", "default", "r1")
            bodies: list[Any] = [
                LifecycleEvent(event="ENGINE_STARTED"),
                TaskStateEvent(task_id="t", task_name="n", state="RUNNING"),
                TaskStateEvent(task_id="t", task_name="n", state="COMPLETED"),
            ]
            for body in bodies:
                await self.publish(
                    topic,
                    Envelope(
                        run_id="r1", org_id="local", project_id="default", source="s", body=body
                    ),
                )
        return handle


def test_watch_json_prints_each_message(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """watch --json prints one JSON line per message and stops after --count telemetry messages."""

    def factory(options: BrokerOptions) -> Connector:
        return _FeedingConnector(broker, presence=False)

    result = invoke("watch", "--json", "--count", "3", connector_factory=factory)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [
        line["payload"]["body"].get("state", line["payload"]["body"].get("event")) for line in lines
    ] == ["ENGINE_STARTED", "RUNNING", "COMPLETED"]
    assert all(line["topic"] == "cascade/telemetry/local/default/r1/events" for line in lines)


def test_watch_live_view_until_duration(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """Without --json on a terminal-less runner it still prints JSON (piped output)."""

    def factory(options: BrokerOptions) -> Connector:
        return _FeedingConnector(broker, presence=False)

    result = invoke("watch", "--duration", "0.5", connector_factory=factory)
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 3


def test_watch_on_a_terminal_shows_live_view(broker: InMemoryBroker) -> None:
    """On a terminal, watch renders the live tables instead of JSON."""
    console = Console(force_terminal=True, width=120, record=True)

    def factory(options: BrokerOptions) -> Connector:
        return _FeedingConnector(broker, presence=False)

    context = CliContext(connector_factory=factory, console=console)
    result = CliRunner().invoke(app, ["watch", "--count", "3"], obj=context)
    assert result.exit_code == 0, result.output
    text = console.export_text()
    for expected in ["Runs", "r1", "completed 1", "Engines", "Constraints"]:
        assert expected in text, expected
    assert '"topic"' not in text


def test_status_and_watch_say_what_a_broker_without_retained_wildcards_hides(
    invoke: Callable[..., Result],
) -> None:
    """On such a broker the constraints Cascade's writers indexed are shown, and one warning
    on stderr names what cannot be (retained engines); the output stays clean."""
    exact_only = InMemoryBroker(retained_to_wildcards=False)

    def factory(options: BrokerOptions) -> InMemoryConnector:
        return InMemoryConnector(exact_only, presence=False)

    assert invoke("pause", "task:api_*", connector_factory=factory).exit_code == 0
    assert invoke("limit", "global", "--concurrency", "2", connector_factory=factory).exit_code == 0
    status = invoke("status", "--json", connector_factory=factory)
    assert status.exit_code == 0, status.output
    assert "status lists the engines online that answer its roll call" in status.stderr
    shown = json.loads(status.stdout)
    assert shown["engines"] == []
    assert sorted((c["scope"], c["type"]) for c in shown["constraints"]) == [
        ("global", "concurrency"),
        ("task:api_*", "pause"),
    ]
    watch = invoke("watch", "--json", "--duration", "0", connector_factory=factory)
    assert watch.exit_code == 0, watch.output
    assert watch.stderr.count("does not deliver retained messages to wildcard") == 1
    lines = [json.loads(line) for line in watch.stdout.splitlines()]
    assert sorted(line["topic"] for line in lines) == [  # each once
        "cascade/constraints/global/concurrency",
        "cascade/constraints/task/api_%2A/pause",
    ]
    assert invoke("resume", "task:api_*", connector_factory=factory).exit_code == 0
    status = invoke("status", "--json", connector_factory=factory)
    assert [c["scope"] for c in json.loads(status.stdout)["constraints"]] == ["global"]
    assert exact_only.retained("cascade/index/constraints") is None  # earlier versions' record
    said = invoke("status").stderr  # a broker that has it: nothing said of it (an empty one)
    assert said.startswith("cascade: heard nothing on localhost:1883:")
    assert "roll call" not in said


class _LateAnswer(InMemoryConnector):
    """A broker without retained wildcards, whose one engine answers the roll call 1.2 s late
    (a loaded machine: a CI run's faults-rabbitmq session once missed an engine so)."""

    async def call_roll(self) -> bool:
        called = await super().call_roll()
        answer = StatusMessage.announce("online", "late", 7)
        asyncio.get_running_loop().call_later(
            1.2, lambda: asyncio.ensure_future(self.publish(status_topic("late"), answer))
        )
        return called


def test_status_waits_for_the_roll_calls_answers_as_long_as_told(
    invoke: Callable[..., Result],
) -> None:
    """--rollcall-wait: an engine that answers after the default second is listed."""
    exact_only = InMemoryBroker(retained_to_wildcards=False)

    def factory(options: BrokerOptions) -> InMemoryConnector:
        return _LateAnswer(exact_only, presence=False)

    by_default = invoke("status", "--json", connector_factory=factory)
    assert by_default.exit_code == 0, by_default.output
    assert json.loads(by_default.stdout)["engines"] == []
    told = invoke("status", "--json", "--rollcall-wait", "4", connector_factory=factory)
    assert told.exit_code == 0, told.output
    assert [e["source"] for e in json.loads(told.stdout)["engines"]] == ["late"]
    assert "--rollcall-wait" in by_default.stderr  # the warning says how to wait longer


def test_status_shows_a_constraint_on_another_scopes_topic_as_refused(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """Issue 45: a global pause retained on a task scope's topic is no constraint (engines
    refuse it): `status` lists the operator's own pause only, and says what it refused."""
    forged = {"id": "pause-global", "scope": "global", "type": "pause", "params": {}}
    publish_retained(constraint_topic("task:etl_*", "pause"), json.dumps(forged).encode())
    assert invoke("limit", "task:api_*", "--concurrency", "2").exit_code == 0
    result = invoke("status")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "refused 1 message claiming constraints/task/etl_%2A/pause: 1 not its topic's scope" in said
    )
    data = json.loads(invoke("status", "--json").output)
    assert [(c["scope"], c["type"]) for c in data["constraints"]] == [("task:api_*", "concurrency")]
    assert data["refused"] == [
        {
            "source": "constraints/task/etl_%2A/pause",
            "messages": 1,
            "reasons": {"not its topic's scope": 1},
        }
    ]
