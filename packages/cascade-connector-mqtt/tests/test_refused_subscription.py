"""A SUBACK refusing a filter (0x80): retried with backoff, its snapshot ended only once granted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker
from cascade.interfaces import Message, SyncPhase


async def eventually(condition: Callable[[], object], what: str, timeout: float = 5) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


def fast(broker: FakeBroker, **options: object) -> MqttConnector:
    """A connector on the fake broker whose refused filters are retried every few ms."""
    settings: dict[str, object] = {
        "backoff_initial": 0.005,
        "backoff_max": 0.01,
        "connect_timeout": 2.0,
    }
    settings.update(options)
    return MqttConnector("broker", source_id="s", link=broker, **settings)  # type: ignore[arg-type]


def retrying() -> set[str]:
    """The names of the connector's tasks that subscribe a refused filter again."""
    return {
        t.get_name()
        for t in asyncio.all_tasks()
        if t.get_name().startswith("cascade-mqtt-resubscribe") and not t.done()
    }


def tries(broker: FakeBroker, topic_filter: str) -> int:
    """SUBSCRIBEs of ``topic_filter`` on the newest link."""
    return sum(topic_filter in batch for batch in broker.link.subscribes)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_refused_at_connect_is_retried_and_synced_only_when_granted(
    broker: FakeBroker, protocol: str
) -> None:
    """Subscribed before connect(): refused, no "end"; granted later: its retained, then "end"."""
    broker.refuse = {"ctl/#"}
    phases: list[SyncPhase] = []
    got: list[Message] = []
    other: list[SyncPhase] = []
    connector = fast(broker, protocol=protocol)
    await connector.subscribe("ctl/#", got.append, on_sync=phases.append)
    await connector.subscribe("open/#", lambda m: None, on_sync=other.append)
    async with connector:
        await eventually(lambda: other == ["begin", "end"], "the granted filter's snapshot")
        await eventually(lambda: tries(broker, "ctl/#") >= 3, "three SUBSCRIBEs of ctl/#")
        assert phases == ["begin"]
        assert connector.stats.subscriptions_refused >= 3
        broker.retained["ctl/pause"] = b'{"pause": 1}'
        broker.refuse.clear()
        await eventually(lambda: phases == ["begin", "end"], "the retried filter's end")
        assert [m.topic for m in got] == ["ctl/pause"]  # before its "end"
        assert not retrying()  # no more SUBSCRIBEs
        assert connector.is_connected
    assert connector.stats.reconnects == 0


async def test_a_subscription_made_online_waits_until_granted(broker: FakeBroker) -> None:
    """subscribe() while connected returns once the refused filter is granted and synced."""
    broker.refuse = {"ctl/#"}
    phases: list[SyncPhase] = []
    async with fast(broker) as connector:

        async def grant_after_two() -> None:
            await eventually(lambda: connector.stats.subscriptions_refused >= 2, "two refusals")
            broker.refuse.clear()

        granting = asyncio.create_task(grant_after_two())
        await connector.subscribe("ctl/#", lambda m: None, on_sync=phases.append)
        assert phases == ["begin", "end"]
        await granting


async def test_refused_for_good_returns_after_connect_timeout_and_warns_at_a_limited_rate(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL that never grants: subscribe() returns after connect_timeout, no "end", the
    refusals counted, one warning naming the filter; unsubscribing stops the SUBSCRIBEs."""
    broker.refuse = {"secret/#"}
    phases: list[SyncPhase] = []
    with caplog.at_level(logging.WARNING, logger="cascade.connectors.mqtt"):
        async with fast(broker, connect_timeout=0.2) as connector:
            handle = await connector.subscribe("secret/#", lambda m: None, on_sync=phases.append)
            assert phases == ["begin"]
            await eventually(lambda: connector.stats.subscriptions_refused >= 5, "five refusals")
            await handle.unsubscribe()
            await eventually(lambda: not retrying(), "the retry stopped")
    refusals = [
        r.getMessage() for r in caplog.records if "refused the subscription" in r.getMessage()
    ]
    assert len(refusals) == 1
    assert "'secret/#'" in refusals[0]
    timeouts = [m for m in caplog.messages if "was not granted within" in m]
    assert len(timeouts) == 1


async def test_a_lost_connection_ends_the_retry_and_the_next_one_subscribes_again(
    broker: FakeBroker,
) -> None:
    """The retry is the connection's: a new connection subscribes every filter, and syncs it."""
    broker.refuse = {"ctl/#"}
    phases: list[SyncPhase] = []
    connector = fast(broker)
    await connector.subscribe("ctl/#", lambda m: None, on_sync=phases.append)
    async with connector:
        first = broker.link
        await eventually(lambda: connector.stats.subscriptions_refused >= 2, "two refusals")
        broker.refuse.clear()
        first.lose()
        await eventually(lambda: broker.link is not first and connector.is_connected, "back")
        await eventually(lambda: phases[-1] == "end", "the snapshot on the new connection")
        assert phases.count("end") == 1
        assert tries(broker, "ctl/#") == 1


class MarkerTopics(set[str]):
    """``FakeBroker.refuse`` refusing every marker topic (their names are the connector's own)
    while ``refusing``."""

    refusing = True

    def __contains__(self, item: object) -> bool:
        return self.refusing and isinstance(item, str) and "/_marker/" in item


async def test_a_refused_marker_topic_ends_the_other_snapshots_once_granted(
    broker: FakeBroker,
) -> None:
    """The markers sent before the marker topic was granted never come back: once it is,
    a new one ends every snapshot that is not refused."""
    refuse = MarkerTopics()
    broker.refuse = refuse
    phases: list[SyncPhase] = []
    connector = fast(broker)
    await connector.subscribe("a/#", lambda m: None, on_sync=phases.append)
    async with connector:
        await eventually(lambda: connector.stats.subscriptions_refused >= 2, "two refusals")
        assert phases == ["begin"]
        refuse.refusing = False
        await eventually(lambda: phases == ["begin", "end"], "the snapshot's end")
