"""What a history stores: a message as the broker delivered it, decoded (:class:`Received`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from cascade.interfaces import (
    DEFAULT_PREFIX,
    Constraint,
    Envelope,
    InvalidMessageError,
    Message,
    StatusMessage,
    constraint_from_topic,
    decode_envelope,
    decode_status,
    same_place,
    same_source,
    split_run_topic,
)
from cascade.interfaces.commands import (
    CancelReply,
    DecisionReply,
    decode_cancel_reply,
    decode_decision_reply,
)
from cascade.interfaces.logs import LogBatch, decode_log_batch
from cascade.interfaces.notes import ClearNote, IssuedNote, decode_clear_note, decode_issued_note
from cascade.interfaces.wire import (
    check_reply_topic,
    constraint_topic_of_note,
    login_of,
    payload_limit,
)

from ._times import parse_time

__all__ = ["NotItsPlaceError", "Received", "Timed", "decode_message", "read_message"]

_ENVELOPE = msgspec.json.Decoder(Envelope)


Body = (
    Envelope
    | StatusMessage
    | Constraint
    | ClearNote
    | CancelReply
    | DecisionReply
    | LogBatch
    | IssuedNote
)
"""What a received message is, decoded."""


@dataclass(frozen=True, slots=True)
class Received:
    """One decoded message for :meth:`History.store <cascade.history.History.store>`.

    ``message`` is what ``cascade.interfaces`` decoded from the payload: an
    :class:`~cascade.interfaces.Envelope` (telemetry: events and heartbeats),
    a :class:`~cascade.interfaces.StatusMessage` (presence) or a
    :class:`~cascade.interfaces.Constraint`, or ``None`` for a constraint
    topic cleared (an empty payload), or a :class:`~cascade.interfaces.notes.ClearNote`
    (who cleared it, why; its ``topic`` is the constraint topic it names), or a
    :class:`~cascade.interfaces.commands.CancelReply` (an engine's answer to a cancel: the audit
    records it), or a :class:`~cascade.interfaces.commands.DecisionReply` (an engine's answer to a
    decision on a held task: the audit records it too), or a
    :class:`~cascade.interfaces.logs.LogBatch` (lines its tasks logged).
    ``received_at`` is when it arrived
    (epoch seconds): the time of a constraint's change, which its payload
    does not carry. ``retained`` is the delivery's retain flag (a retained
    constraint or status delivered again on subscribing is no new change).
    """

    topic: str
    message: (
        Envelope
        | StatusMessage
        | Constraint
        | ClearNote
        | CancelReply
        | DecisionReply
        | LogBatch
        | IssuedNote
        | None
    )
    received_at: float
    retained: bool = False


@dataclass(frozen=True, slots=True)
class Timed(Received):
    """A telemetry message whose envelope's ``ts`` the recorder read already: ``at``, epoch
    seconds (``None``: it is no time), so that the writer does not read it again; and its
    topic: ``sourced``, whether it is on the sourced layout (a source level the broker binds),
    so that nothing after the decoding splits the topic again."""

    at: float | None = None
    sourced: bool = False


def _envelope(message: Message) -> Envelope:
    """The envelope a telemetry message carries, decoded from its bytes where it has them.

    Typed, straight from the bytes, it costs half of converting the connector's decoded
    payload; whatever that decoding refuses is converted from the payload, as it always was,
    so what is taken, and what a rejection says, do not change.
    """
    if message.raw:
        try:
            return _ENVELOPE.decode(message.raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass
    return decode_envelope(message.payload)


def decode_message(
    message: Message, prefix: str = DEFAULT_PREFIX, received_at: float | None = None
) -> Received | None:
    """Decode a delivered message of Cascade's protocol for the history.

    Returns ``None`` for what the history does not keep (a cleared status,
    topics of other kinds). Raises :class:`~cascade.interfaces.InvalidMessageError`
    for a payload larger than its kind's bound or not following the protocol,
    a constraint of a scope engines reject (``cluster:all``, ``tsk:x``) included.
    """
    return _decode(message, prefix, received_at, timed=False)


def read_message(message: Message, prefix: str, received_at: float) -> Received | None:
    """:func:`decode_message`, telemetry as :class:`Timed` (the recorder's callback)."""
    return _decode(message, prefix, received_at, timed=True)


def _decode(
    message: Message, prefix: str, received_at: float | None, *, timed: bool
) -> Received | None:
    kind, _, rest = message.topic.removeprefix(prefix + "/").partition("/")
    limit = payload_limit(kind)
    if limit is not None and len(message.raw) > limit:
        raise InvalidMessageError(f"{kind} payload is {len(message.raw)} bytes; at most {limit}")
    when = time.time() if received_at is None else received_at
    payload = message.payload
    decoded: Envelope | StatusMessage | Constraint | None
    if kind == "telemetry":
        levels = split_run_topic(message.topic, prefix)
        if levels is None:
            return None
        decoded = _envelope(message)
        if levels[1] is not None and not same_source(decoded.source, levels[1]):
            raise InvalidMessageError(
                f"from {decoded.source[:64]!r} on {levels[1][:64]!r}'s topic", "$.source"
            )
        _check_place(message.topic, decoded, prefix)
        if timed:
            at = parse_time(decoded.ts)
            return Timed(message.topic, decoded, when, message.retain, at, levels[1] is not None)
    elif kind == "status":
        if not payload:
            return None  # `cascade forget` cleared it: no change of presence
        decoded = decode_status(payload)
        if decoded.source and not same_source(decoded.source, rest):
            raise InvalidMessageError(
                f"the status of {decoded.source[:64]!r} on {rest[:64]!r}'s topic", "$.source"
            )
    elif kind == "constraints":
        # what no engine applies (another scope than its topic's) is no constraint set
        decoded = None
        if payload:
            decoded = constraint_from_topic(message.topic, payload, prefix)
    elif kind == "cleared":  # who cleared the constraint on the topic it names, and why
        topic = constraint_topic_of_note(message.topic, prefix)
        return Received(topic, decode_clear_note(payload), when, message.retain)
    elif kind == "issued":  # what a broker login says it did (the audit's witness)
        try:
            login_of(message.topic, prefix)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from None
        return Received(message.topic, decode_issued_note(payload), when, message.retain)
    elif kind == "reply":  # an engine's answer to a cancel (who stopped which run, and what)
        # or to a decision on a held task (which names its decision)
        reply: CancelReply | DecisionReply
        if "workflow" in payload:  # a start's answer: its audit row is the run's own start
            return None
        if "decision" in payload:
            reply = decode_decision_reply(message.raw or payload)
        else:
            reply = decode_cancel_reply(payload)
        check_reply_topic(reply, message.topic, prefix)
        return Received(message.topic, reply, when, message.retain)
    elif kind == "logs":  # what a run's tasks logged
        split = split_run_topic(message.topic, prefix)
        if split is None:
            return None
        batch = decode_log_batch(message.raw or payload)
        if split[1] is not None and not same_source(batch.source, split[1]):
            raise InvalidMessageError(
                f"from {batch.source[:64]!r} on {split[1][:64]!r}'s topic", "$.source"
            )
        _check_place(message.topic, batch, prefix)
        return Received(message.topic, batch, when, message.retain)
    else:
        return None
    return Received(message.topic, decoded, when, message.retain)


class NotItsPlaceError(InvalidMessageError):
    """A run's telemetry or log lines whose payload names another org or project than its
    topic, which a broker ACL binds to the sender's login: forged, refused (``run_id``: the
    run the payload claims)."""

    def __init__(self, run_id: str, org_id: str, project_id: str) -> None:
        super().__init__(
            f"of {org_id[:64]!r}/{project_id[:64]!r} on another org's or project's topic",
            "$.org_id",
        )
        self.run_id = run_id


def _check_place(topic: str, said: Envelope | LogBatch, prefix: str) -> None:
    if not same_place(topic, said.org_id, said.project_id, prefix):
        raise NotItsPlaceError(said.run_id, said.org_id, said.project_id)
