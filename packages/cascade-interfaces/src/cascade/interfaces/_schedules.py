"""Schedules of served workflows on the wire: what a serving process says of each schedule in
its announcement, and the claim by which the servers of a schedule fire each slot once
(docs/schedules.md).

A slot is one time a schedule fires, named by its UTC time to the second
(:func:`slot_stamp`). Every server of the schedule that reaches a slot publishes a
:class:`SlotClaim`, retained at QoS 1, on :func:`slot_claim_topic` of the slot, after it has
subscribed to :func:`slot_claims_filter`; the broker orders the messages of a topic, so the
first claim each subscriber hears on a slot's topic (the retained one when it subscribed
after a claim was made) is the same for all, and its server alone fires the slot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._topics import DEFAULT_PREFIX, decode_level, encode_level

__all__ = [
    "Catchup",
    "Overlap",
    "ServedSchedule",
    "SlotClaim",
    "decode_slot_claim",
    "slot_claim_topic",
    "slot_claims_filter",
    "slot_from_stamp",
    "slot_request_id",
    "slot_stamp",
    "split_slot_claim_topic",
]

Overlap: TypeAlias = Literal["skip", "queue", "cancel", "allow"]
"""What a slot does while a run of its schedule lives: ``skip`` it, ``queue`` it (one slot
waits; a later one while it waits is skipped), ``cancel`` the live run and start, or
``allow`` both."""
Catchup: TypeAlias = Literal["none", "latest", "all"]
"""What the slots missed while no server of the schedule ran (an outage) do when one comes
back: ``none`` fire, ``latest`` alone fires, ``all`` fire (the latest 100 at most)."""

_READ_LIMIT = 1024
_Text = Annotated[str, msgspec.Meta(max_length=_READ_LIMIT)]
_Name = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a schedule's name is 1 to 64 of A-Z a-z 0-9 _ -, not {name!r}")
    return name


def slot_stamp(slot: datetime) -> str:
    """``slot`` (aware) as its topic level and request ids name it: UTC to the second,
    ``20261125T010000Z``."""
    return slot.astimezone(timezone.utc).strftime(_STAMP)


def slot_from_stamp(stamp: str) -> datetime:
    """The UTC time :func:`slot_stamp` wrote; ``ValueError`` for other text."""
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc)


SLOT_REQUEST_PREFIX = "sched-"
"""How a slot's request id begins (:func:`slot_request_id`): a serving engine refuses a start
request whose id begins so unless it is the backfill of that slot."""


def slot_request_id(schedule: str, slot: datetime) -> str:
    """The start request id that names ``schedule``'s ``slot`` (``sched-nightly-20261125T010000Z``;
    a name over 40 characters is cut and given a digest of itself, so the id fits 64): a
    serving engine takes each id once, and a results store it shares claims it once."""
    name = _checked_name(schedule)
    if len(name) > 40:
        name = f"{name[:32]}_{hashlib.sha256(name.encode()).hexdigest()[:7]}"
    return f"{SLOT_REQUEST_PREFIX}{name}-{slot_stamp(slot)}"


def slot_claims_filter(
    org_id: str, project_id: str, schedule: str = "+", prefix: str = DEFAULT_PREFIX
) -> str:
    """``{prefix}/schedule/{org}/{project}/{schedule}/+``: every slot's claim of ``schedule``
    (of every schedule with ``+``)."""
    name = schedule if schedule == "+" else encode_level(_checked_name(schedule))
    return f"{prefix}/schedule/{encode_level(org_id)}/{encode_level(project_id)}/{name}/+"


def slot_claim_topic(
    org_id: str, project_id: str, schedule: str, slot: datetime, prefix: str = DEFAULT_PREFIX
) -> str:
    """``{prefix}/schedule/{org}/{project}/{schedule}/{slot stamp}``: where the servers of
    ``schedule`` claim ``slot``."""
    return slot_claims_filter(org_id, project_id, schedule, prefix)[:-1] + slot_stamp(slot)


def split_slot_claim_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, datetime] | None:
    """The schedule and slot a claim's ``topic`` names; ``None`` for another topic."""
    levels = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
    if len(levels) != 5 or levels[0] != "schedule":
        return None
    try:
        return _checked_name(decode_level(levels[3])), slot_from_stamp(levels[4])
    except ValueError:
        return None


class SlotClaim(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A server's claim of a schedule's slot: its ``source``, a ``nonce`` of its own for this
    claim, and when it claimed (``at``, epoch seconds). ``backfill``: claimed by a backfill
    request, not by the clock."""

    source: _Text
    nonce: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{8,64}$")]
    at: _Seconds
    backfill: bool = False


def decode_slot_claim(data: Mapping[str, Any] | bytes | str) -> SlotClaim:
    """Decode and validate an untrusted claim; raises :class:`InvalidMessageError`."""
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    return convert(data, SlotClaim)


class ServedSchedule(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A schedule a serving process fires, in its announcement: its ``name``, the
    ``workflow`` it starts, when (``cron`` and ``tz``, or ``every`` seconds), its
    ``overlap`` and ``catchup``; its ``next`` slot (ISO, UTC), the ``last`` slot it heard
    claimed (ISO) and, of the last slot this process fired (``last_slot``, ISO), its run
    (``last_run``); ``paused`` while a
    pause on ``schedule:<name>`` is in force, by whom (``paused_by``), why (``paused_reason``)
    and until when (``paused_until``, epoch seconds; 0: until resumed); ``upcoming``: the
    slots after ``next`` (ISO, at most 4); ``skipped`` counts the slots it skipped
    (overlap ``skip``, a full queue or server, a pause) and ``last_skipped`` says the
    latest one and why."""

    name: _Name
    workflow: _Name
    cron: _Text = ""
    tz: _Text = ""
    every: _Seconds = 0.0
    overlap: Overlap = "skip"
    catchup: Catchup = "latest"
    next: _Text = ""
    last: _Text = ""
    last_run: _Text = ""
    last_slot: _Text = ""
    paused: bool = False
    paused_by: _Text = ""
    paused_reason: _Text = ""
    paused_until: _Seconds = 0.0
    upcoming: Annotated[list[_Text], msgspec.Meta(max_length=8)] = []
    skipped: _Count = 0
    last_skipped: _Text = ""
