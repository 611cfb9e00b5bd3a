"""``EventWatch`` on an in-memory broker: an engine's will heard live is ``engine.lost``; one
that ended cleanly, or a will retained from the past, is not; filters pick runs."""

from __future__ import annotations

import msgspec
import pytest

from cascade.connector_kit.testing import telemetry
from cascade.interfaces import LifecycleEvent, Message, StatusMessage
from cascade.interfaces.serving import RunOrigin
from cascade.notify import EventWatch, headline, parse_filter
from cascade.reader import ReaderModel


def _status(status: str, retain: bool = False, reason: str | None = None) -> Message:
    payload = StatusMessage.announce(status, "host-1", 7, reason=reason)  # type: ignore[arg-type]
    raw = msgspec.json.encode(payload)
    return Message("cascade/status/host-1", msgspec.json.decode(raw), raw, 1, retain)


def test_a_will_heard_live_is_an_engine_lost() -> None:
    watch = EventWatch(ReaderModel())
    assert watch.apply(_status("online")) == []
    [lost] = watch.apply(_status("offline"))
    assert lost.kind == "engine.lost"
    assert lost.key == "engine.lost:host-1:7"


def test_a_clean_end_and_a_retained_will_are_not() -> None:
    watch = EventWatch(ReaderModel())
    watch.apply(_status("online"))
    assert watch.apply(_status("offline", reason="shutdown")) == []
    other = EventWatch(ReaderModel())
    assert other.apply(_status("offline", retain=True)) == []


def test_filters_are_levels_of_globs() -> None:
    assert parse_filter("acme/etl*") == ("acme", "etl*")
    with pytest.raises(ValueError, match="ORG"):
        parse_filter("a//b")
    with pytest.raises(ValueError, match="unknown events"):
        EventWatch(ReaderModel(), events=["run.exploded"])


def test_a_failed_run_on_another_orgs_topic_is_not_notified() -> None:
    """A globex login's run 'of acme/etl', published on globex's topic (the one its ACL gives
    it): a notifier filtered to acme/* posts nothing, and counts it refused."""
    watch = EventWatch(ReaderModel(), filters=[parse_filter("acme/*")])
    for seq, body in enumerate(
        (LifecycleEvent(event="ENGINE_STARTED", tasks=1),
         LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="Evil: forged")), 1
    ):  # fmt: skip
        claim = telemetry(body, seq=seq, source="engine-g", org_id="acme", project_id="etl",
                          sourced=True)  # fmt: skip
        topic = claim.topic.replace("/acme/", "/globex/")
        assert watch.apply(Message(topic, claim.payload, raw=claim.raw)) == []
    assert watch.model.refusals.describe("engine-g") == "2 not its topic's org or project"


def test_a_run_carried_on_after_its_engine_died_is_told_once() -> None:
    watch = EventWatch(ReaderModel())
    origin = RunOrigin(
        workflow="etl", carried_on_from="lost-run", lost_engine="server-a", carry_ons=1
    )
    started = LifecycleEvent(event="ENGINE_STARTED", tasks=3, name="etl", origin=origin)
    [carried] = watch.apply(telemetry(started, run_id="new-run", source="server-b"))
    assert carried.kind == "run.carried_on"
    assert carried.key == "run.carried_on:new-run"
    assert (carried.carried_on_from, carried.lost_engine) == ("lost-run", "server-a")
    assert headline(carried) == (
        "run etl (lost-run) carried on as new-run by server-b in local/default: "
        "its engine server-a died"
    )
    # its snapshot says the same origin again: told once
    assert watch.apply(telemetry(started, run_id="new-run", source="server-b")) == []
    plain = LifecycleEvent(event="ENGINE_STARTED", tasks=3, origin=RunOrigin(workflow="etl"))
    assert watch.apply(telemetry(plain, run_id="other-run")) == []


def _started(run_id: str, source: str, origin: RunOrigin | None = None) -> Message:
    start = LifecycleEvent(event="ENGINE_STARTED", tasks=3, name="etl", origin=origin)
    return telemetry(start, run_id=run_id, source=source)


def test_a_run_lost_with_its_engine_and_never_carried_on_is_told_once() -> None:
    now = [1_000.0]
    watch = EventWatch(ReaderModel(), clock=lambda: now[0], lost_after=60.0)
    watch.apply(_status("online"))
    watch.apply(_started("kept-run", "host-1"))
    watch.apply(_started("dropped-run", "host-1"))
    [lost_engine] = watch.apply(_status("offline"))
    assert lost_engine.kind == "engine.lost"
    assert watch.next_due() == 1_060.0
    assert watch.due(1_059.0) == []  # a server has a minute to carry each on
    carried = RunOrigin(workflow="etl", carried_on_from="kept-run", lost_engine="host-1")
    watch.apply(_started("new-run", "server-b", carried))
    [lost] = watch.due(1_060.0)
    assert (lost.kind, lost.key, lost.run_id) == ("run.lost", "run.lost:dropped-run", "dropped-run")
    assert headline(lost).startswith("run etl (dropped-run) lost in local/default")
    assert watch.due(2_000.0) == []  # told once


def test_a_carry_on_elsewhere_does_not_hide_a_run_s_loss() -> None:
    """Another project's engine naming the lost run as the one it carries on vouches for
    nothing: the loss is still told."""
    now = [1_000.0]
    watch = EventWatch(ReaderModel(), clock=lambda: now[0], lost_after=60.0)
    watch.apply(_status("online"))
    watch.apply(_started("lost-run", "host-1"))
    watch.apply(_status("offline"))
    claimed = RunOrigin(workflow="etl", carried_on_from="lost-run", lost_engine="host-1")
    start = LifecycleEvent(event="ENGINE_STARTED", tasks=1, name="etl", origin=claimed)
    watch.apply(telemetry(start, run_id="liar-run", source="evil", project_id="other"))
    [lost] = watch.due(1_060.0)
    assert (lost.kind, lost.run_id) == ("run.lost", "lost-run")
