"""The readers subscribe within --org/--project, and a subscription the broker refuses ends a
command (exit 1) saying so, never a "nothing" with exit 0."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import Result

from cascade.cli.plumbing import BrokerOptions
from cascade.connector_kit import Subscription
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import MessageCallback, SyncCallback


class _Stats:
    """The connector's counters, and the refusals an MQTT connector counts."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats
        self.subscriptions_refused = 0
        self.subscriptions_cut = 0
        self.subscriptions_given_up = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stats, name)


class _ScopedLogin(InMemoryConnector):
    """A login over org:acme under a broker ACL that refuses (as mosquitto 5 or NATS do) a
    subscription to runs or summaries beyond acme, or to the engines' own summaries."""

    def __init__(self, broker: InMemoryBroker, granted: list[str]) -> None:
        super().__init__(broker, presence=False)
        self.granted = granted
        self._acl_stats = _Stats(super().stats)

    @property
    def stats(self) -> Any:
        return self._acl_stats

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> Subscription:
        if _beyond(topic_filter):
            self._acl_stats.subscriptions_refused += 1
        else:
            self.granted.append(topic_filter)
        return await super().subscribe(topic_filter, callback, on_sync=on_sync)


def _beyond(topic_filter: str) -> bool:
    """Whether an ACL of a login over org:acme denies ``topic_filter``."""
    levels = topic_filter.split("/")
    return levels[1] in ("telemetry", "logs", "summary") and (
        len(levels) == 3 or levels[2] != "acme"
    )


class _CutLogin(_ScopedLogin):
    """The same login under RabbitMQ's topic permissions: a SUBSCRIBE they deny closes the
    connection (counted cut); the connector gives the filter up on a later connection, whose
    marker then ends its snapshot as it ends every other."""

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> Subscription:
        if not _beyond(topic_filter):
            return await super().subscribe(topic_filter, callback, on_sync=on_sync)
        stats = self._acl_stats
        stats.subscriptions_cut += 1

        def given_up() -> None:
            stats.subscriptions_given_up += 1
            if on_sync is not None:
                on_sync("end")

        asyncio.get_running_loop().call_later(0.05, given_up)  # a few connections later
        return await InMemoryConnector.subscribe(self, topic_filter, callback)


@pytest.fixture
def scoped(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> tuple[Callable[..., Result], list[str]]:
    granted: list[str] = []

    def factory(options: BrokerOptions) -> InMemoryConnector:
        return _ScopedLogin(broker, granted)

    def run(*args: str) -> Result:
        return invoke(*args, connector_factory=factory)

    return run, granted


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--json"),
        ("held", "--json"),
        ("watch", "--json", "--duration", "0"),
        ("watch", "--project", "etl", "--json", "--duration", "0"),
        ("status", "--org", "globex", "--json"),
    ],
)
def test_a_refused_subscription_ends_a_reader_saying_so(
    scoped: tuple[Callable[..., Result], list[str]], args: tuple[str, ...]
) -> None:
    """Without scopes (or with an org the login lacks) the reader exits 1 naming the filter
    refused and what to give; it prints no answer."""
    run, _ = scoped
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert "the broker refused the subscription to cascade/" in result.stderr
    assert "--org ORG or --project ORG/PROJECT" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [("status", "--json"), ("held", "--json"), ("watch", "--json", "--duration", "0")],
)
def test_a_subscription_given_up_ends_a_reader_at_once_naming_it(
    invoke: Callable[..., Result], broker: InMemoryBroker, args: tuple[str, ...]
) -> None:
    """RabbitMQ closes the connection on a denied SUBSCRIBE, and the connector gives the filter
    up: the reader exits 1 then, naming that filter, and subscribes to nothing more (each
    given-up filter costs a few connections)."""
    granted: list[str] = []
    result = invoke(*args, connector_factory=lambda options: _CutLogin(broker, granted))
    assert result.exit_code == 1, result.output
    assert "the broker did not answer the subscription to cascade/" in result.stderr
    assert "--org ORG or --project ORG/PROJECT" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "filters"),
    [
        (("status", "--org", "acme", "--json"), ["cascade/summary/acme/+/+"]),
        (("held", "--org", "acme", "--json"), ["cascade/telemetry/acme/#"]),
        (
            ("watch", "--project", "acme/etl", "--json", "--duration", "0"),
            ["cascade/telemetry/acme/etl/#", "cascade/summary/acme/etl/+"],
        ),
        (
            ("watch", "--org", "acme", "--project", "etl", "--json", "--duration", "0"),
            ["cascade/telemetry/acme/etl/#", "cascade/summary/acme/etl/+"],
        ),
    ],
)
def test_readers_subscribe_within_their_org_and_project(
    scoped: tuple[Callable[..., Result], list[str]],
    args: tuple[str, ...],
    filters: list[str],
) -> None:
    """--org ORG, --project ORG/PROJECT (or --org with --project) keep every subscription of
    runs and summaries there: the login's ACL grants them all."""
    run, granted = scoped
    result = run(*args)
    assert result.exit_code == 0, result.output
    for topic_filter in filters:
        assert topic_filter in granted
    if args[0] == "held":
        assert json.loads(result.stdout) == {"held": []}


def test_the_readers_scope_comes_from_the_environment(
    scoped: tuple[Callable[..., Result], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CASCADE_ORG is --org's default."""
    run, granted = scoped
    monkeypatch.setenv("CASCADE_ORG", "acme")
    assert run("status", "--json").exit_code == 0
    assert "cascade/summary/acme/+/+" in granted


@pytest.mark.parametrize("project", ["/etl", "acme/"])
def test_a_project_that_names_no_org_and_project_is_a_usage_error(
    scoped: tuple[Callable[..., Result], list[str]], project: str
) -> None:
    """--project ORG/PROJECT with an empty or invalid part exits 2."""
    run, granted = scoped
    result = run("watch", "--project", project, "--json", "--duration", "0")
    assert result.exit_code == 2, result.output
    assert granted == []
