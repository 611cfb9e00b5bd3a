"""A run's first speaker is believed no more than the next: a source something vouches for
(its start, its sourced topic, its online status) takes over a run first heard from one nothing
vouched for, and the history keeps the claims apart: which source was believed, why, and what
the others said (set aside, refused)."""

from __future__ import annotations

import time

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import Claim, History, Recorder
from cascade.interfaces import status_topic
from cascade.reader import REASON_FOREIGN

from .messages import T0, lifecycle, task
from .test_refusals import RUN, _event, _publish


async def _online(broker: InMemoryBroker, source: str) -> None:
    async with InMemoryConnector(broker, presence=False) as publisher:
        status = {"status": "online", "source": source, "session": 1}
        await publisher.publish(status_topic(source), status, qos=1, retain=True)
    await broker.idle()


async def test_an_engine_online_takes_its_run_from_a_forger_heard_first(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """The forger's events 1-3 (its own name, nothing vouching for it) are stored first; the
    engine, online by its status, then speaks of the run: it owns it, its events are the run's,
    the forger's three are set aside and its next is refused, each under its name."""
    forged = [_event(RUN, n, source="attacker", state="FAILED", error="Evil") for n in (1, 2, 3)]
    await _publish(broker, recorder, *forged)
    [run] = history.runs()
    assert (run.source, run.vouched) == ("attacker", None)
    await _online(broker, "engine-1")
    await _publish(broker, recorder, *(_event(RUN, n) for n in (1, 2, 3)))
    await _publish(broker, recorder, _event(RUN, 4, source="attacker", state="FAILED"))
    [run] = history.runs()
    assert (run.source, run.vouched, run.status) == ("engine-1", "online", "Running")
    assert run.tasks == {"COMPLETED": 3}
    assert run.claims == [Claim("attacker", refused=1, set_aside=3)]
    assert run.refused == {REASON_FOREIGN: 1}
    assert run.to_json()["claims"] == [{"source": "attacker", "refused": 1, "set_aside": 3}]


async def test_a_run_its_start_vouches_for_is_not_taken_over(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """The engine's ENGINE_STARTED (seq 1) vouches for it: a forger online by its own status
    takes nothing; its events are refused, counted under its name."""
    started = {**_event(RUN, 1), "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}}
    await _publish(broker, recorder, started, _event(RUN, 2))
    await _online(broker, "attacker")
    await _publish(broker, recorder, *(_event(RUN, n, source="attacker") for n in (1, 2)))
    [run] = history.runs()
    assert (run.source, run.vouched, run.tasks) == ("engine-1", "start", {"COMPLETED": 1})
    assert run.claims == [Claim("attacker", refused=2, set_aside=0)]


async def test_nothing_vouching_for_either_the_first_stays(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """Neither source vouched for (no status, no start, plain topics): the first keeps the run,
    and the history says so (nothing vouches for it; the other's messages refused)."""
    await _publish(broker, recorder, _event(RUN, 1, source="attacker"), _event(RUN, 1))
    [run] = history.runs()
    assert (run.source, run.vouched) == ("attacker", None)
    assert run.claims == [Claim("engine-1", refused=1, set_aside=0)]


def test_a_restarted_recorder_hands_over_a_run_nothing_vouched_for(history: History) -> None:
    """The history's own rule, whatever the recorder remembers: stored from ``attacker`` with
    nothing vouching for it, the run goes to ``host-1`` (the engine) once a write says its
    sourced topic vouches for it; a later write vouching for ``attacker`` changes nothing."""
    history.store([task(RUN, "a-1", "FAILED", T0, seq=1, source="attacker")])
    history.store(
        [lifecycle(RUN, "ENGINE_STARTED", T0, seq=1), task(RUN, "a-1", "COMPLETED", T0, seq=2)],
        vouched={RUN: ("host-1", "topic")},
    )
    history.store(
        [task(RUN, "a-1", "FAILED", T0, seq=3, source="attacker")],
        vouched={RUN: ("attacker", "online")},
    )
    [run] = history.runs()
    assert (run.source, run.vouched, run.tasks) == ("host-1", "topic", {"COMPLETED": 1})
    assert run.claims == [Claim("attacker", refused=1, set_aside=1)]


def test_claims_go_with_their_run(history: History) -> None:
    """Pruning a run prunes its claims: the same run id recorded again has none."""
    history.store([task(RUN, "a-1", "FAILED", T0, seq=1, source="attacker")])
    history.store([task(RUN, "a-1", "RUNNING", T0, seq=1)], vouched={RUN: ("host-1", "online")})
    [run] = history.runs()
    assert run.claims == [Claim("attacker", refused=0, set_aside=1)]
    history.prune(time.time() + 60)
    history.store([task(RUN, "a-1", "RUNNING", T0, seq=1)])
    [run] = history.runs()
    assert (run.source, run.claims) == ("host-1", [])
