"""The logins' witness notes: a set, a clear or a cancel the broker's login said it did is
vouched for by the broker in the audit; anything else stays claimed."""

from __future__ import annotations

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received, Recorder
from cascade.interfaces.notes import IssuedNote, issued_topic

from .messages import T0, cancel_reply, cleared, constraint, lifecycle, note

PAUSE = "cascade/constraints/task/etl_%2A/pause"
RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


def witnessed(login: str, at: float, **said: object) -> Received:
    """``login``'s note (received at ``at``) of what it did."""
    return Received(issued_topic(login), IssuedNote(**said), at)  # type: ignore[arg-type]


def test_a_login_that_did_what_its_note_says_is_vouched_for_by_the_broker(
    history: History,
) -> None:
    history.store([lifecycle(RUN, "ENGINE_STARTED", T0, seq=1, source="host-1")])
    history.store(
        [
            constraint(PAUSE, "task:etl_*", "pause", T0 + 1, issued_by="olga", issued_at=T0 + 0.5),
            witnessed("olga", T0 + 1.1, topic=PAUSE, action="set", issued_at=T0 + 0.5,
                      issued_by="olga"),
            cleared(PAUSE, T0 + 2),
            note(PAUSE, T0 + 2.1, issued_by="olga", issued_at=T0 + 1.9),
            witnessed("olga", T0 + 2.2, topic=PAUSE, action="cleared", issued_at=T0 + 1.9,
                      issued_by="olga"),
            cancel_reply("req-1", RUN, T0 + 3, issued_by="olga", issued_at=T0 + 2.9),
            witnessed("olga", T0 + 3.1, topic=f"cascade/command/{RUN}/cancel", action="cancel",
                      issued_at=T0 + 2.9, issued_by="olga", id="req-1"),
        ]
    )  # fmt: skip
    events = {event.action: event for event in history.audit()}
    assert {action: event.vouched for action, event in events.items()} == {
        "set": "broker",
        "cleared": "broker",
        "cancelled": "broker",
    }


def test_a_note_vouches_only_for_its_login_and_what_it_names(history: History) -> None:
    """mallory's note of olga's pause, olga's note of a pause claiming bob, a note of another
    moment: none of them vouches; the audit says claimed."""
    history.store(
        [
            constraint(PAUSE, "task:etl_*", "pause", T0 + 1, issued_by="olga", issued_at=T0 + 0.5),
            witnessed("mallory", T0 + 1.1, topic=PAUSE, action="set", issued_at=T0 + 0.5,
                      issued_by="olga"),
            constraint(PAUSE, "task:etl_*", "pause", T0 + 5, issued_by="bob", issued_at=T0 + 4.5,
                       params={"x": 1}),
            witnessed("olga", T0 + 5.1, topic=PAUSE, action="set", issued_at=T0 + 4.5,
                      issued_by="bob"),
            constraint(PAUSE, "task:etl_*", "pause", T0 + 9, issued_by="olga", issued_at=T0 + 8.5,
                       params={"x": 2}),
            witnessed("olga", T0 + 9.1, topic=PAUSE, action="set", issued_at=T0 + 7,
                      issued_by="olga"),
        ]
    )  # fmt: skip
    assert [(e.issued_by, e.vouched) for e in history.audit()] == [
        ("olga", None),
        ("bob", None),
        ("olga", None),
    ]


async def test_a_recorder_reads_the_notes_only_when_the_logins_are_bound(
    history: History,
) -> None:
    """Without logins_bound a recorder does not subscribe to the notes: nobody's note can
    vouch where the broker binds no login to its topic."""
    broker = InMemoryBroker()
    stored = {}
    for bound in (False, True):
        async with (
            InMemoryConnector(broker, presence=False) as connector,
            InMemoryConnector(broker, presence=False) as olga,
        ):
            recorder = Recorder(connector, history, logins_bound=bound)
            await recorder.start()
            said = IssuedNote(topic=PAUSE, action="set", issued_at=T0, issued_by="olga")
            await olga.publish(issued_topic("olga"), said, qos=1)
            await broker.idle()
            await recorder.flush(timeout=5)
            await recorder.stop()
        stored[bound] = (recorder.stats.received, recorder.stats.stored)
    assert stored == {False: (0, 0), True: (1, 1)}
