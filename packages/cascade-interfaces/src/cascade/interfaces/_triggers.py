"""Triggers of served workflows on the wire (docs/triggers.md): the notice a serving process
sends when one of its runs ends (what an ``after=`` trigger hears, on a topic a broker ACL
binds to the engine's login), the claims by which the servers of a trigger start each event's
run once, and what a serving process says of each trigger in its announcement."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._topics import DEFAULT_PREFIX, decode_level, encode_level

__all__ = [
    "TRIGGER_REQUEST_PREFIX",
    "EndStatus",
    "RunEnded",
    "ServedTrigger",
    "TriggerKind",
    "decode_run_ended",
    "ended_filter",
    "ended_topic",
    "event_key",
    "split_trigger_claim_topic",
    "trigger_claim_topic",
    "trigger_claims_filter",
    "trigger_request_id",
]

_READ_LIMIT = 1024
_Text = Annotated[str, msgspec.Meta(max_length=_READ_LIMIT)]
_Name = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]
_KEY = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

EndStatus: TypeAlias = Literal["Succeeded", "Failed", "Cancelled"]
"""How a run ended."""
TriggerKind: TypeAlias = Literal["after", "signal", "files"]
"""What a trigger starts on: a run's end, a signal, new files."""
TRIGGER_REQUEST_PREFIX = "trig-"
"""How an event's request id begins (:func:`trigger_request_id`): a serving engine refuses a
start request from the broker whose id begins so."""


def _place(org_id: str, project_id: str) -> str:
    return f"{encode_level(org_id)}/{encode_level(project_id)}"


def ended_topic(org_id: str, project_id: str, source: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/served/{org}/{project}/{source}/ended``: where a serving process says its
    runs' ends (its own served topic's level: a broker ACL binds it to the engine's login)."""
    return f"{prefix}/served/{_place(org_id, project_id)}/{encode_level(source)}/ended"


def ended_filter(org_id: str, project_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/served/{org}/{project}/+/ended``: every run end of that org and project."""
    return f"{prefix}/served/{_place(org_id, project_id)}/+/ended"


class RunEnded(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A served run ended: at ``source`` (its topic's), of ``workflow``, with ``status``, its
    ``params`` (its origin's), and ``trigger_depth``: how many triggered runs led to it (0: it
    was not started by a trigger), which bounds a trigger that starts its own workflow."""

    source: _Text
    run_id: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    workflow: _Name
    status: EndStatus
    params: dict[Annotated[str, msgspec.Meta(max_length=_READ_LIMIT)], Any] = {}
    trigger_depth: _Count = 0
    ts: _Seconds = 0.0


def decode_run_ended(data: Mapping[str, Any] | bytes | str) -> RunEnded:
    """Decode and validate an untrusted run end; raises :class:`InvalidMessageError`."""
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    return convert(data, RunEnded)


def event_key(*parts: str) -> str:
    """An event's key: 32 hex digits of a digest of ``parts`` (a run id; a file's path and
    version; a signal's id or payload), the same at every server that hears the event."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a trigger's name is 1 to 64 of A-Z a-z 0-9 _ -, not {name!r}")
    return name


def trigger_request_id(trigger: str, key: str) -> str:
    """The start request id of ``trigger``'s event ``key`` (``trig-report_after_etl-<key>``; a
    name over 26 characters is cut and given a digest of itself, so the id fits 64): a serving
    engine takes each id once, and a results store it shares claims it once."""
    name = _checked_name(trigger)
    if len(name) > 26:
        name = f"{name[:18]}_{hashlib.sha256(name.encode()).hexdigest()[:7]}"
    return f"{TRIGGER_REQUEST_PREFIX}{name}-{key}"


def trigger_claims_filter(org_id: str, project_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/trigger/{org}/{project}/+/+``: every event's claim of every trigger."""
    return f"{prefix}/trigger/{_place(org_id, project_id)}/+/+"


def trigger_claim_topic(
    org_id: str, project_id: str, trigger: str, key: str, prefix: str = DEFAULT_PREFIX
) -> str:
    """``{prefix}/trigger/{org}/{project}/{trigger}/{key}``: where the servers of ``trigger``
    claim the event ``key`` (:func:`event_key`)."""
    name = encode_level(_checked_name(trigger))
    return f"{prefix}/trigger/{_place(org_id, project_id)}/{name}/{key}"


def split_trigger_claim_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str] | None:
    """The trigger and event key a claim's ``topic`` names; ``None`` for another topic."""
    levels = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
    if len(levels) != 5 or levels[0] != "trigger" or not _KEY.fullmatch(levels[4]):
        return None
    try:
        return _checked_name(decode_level(levels[3])), levels[4]
    except ValueError:
        return None


class ServedTrigger(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A trigger a serving process runs, in its announcement: its ``name``, the ``workflow``
    it starts, its ``kind`` and what it starts on (``on``: ``etl Succeeded``, a signal's topic,
    a glob); ``paused`` (by, why, until) while a pause on ``trigger:<name>`` is in force; of the
    events this process heard: ``events``, the ``last_event`` (said) and when (``last_at``,
    epoch seconds); ``started``: the runs it started, the last one ``last_run``; ``waiting``:
    events waiting for room; ``dropped``: events dropped (a full wait, a flood past its rate,
    a loop past its depth), ``last_dropped`` saying the latest and why."""

    name: _Name
    workflow: _Name
    kind: TriggerKind
    on: _Text = ""
    paused: bool = False
    paused_by: _Text = ""
    paused_reason: _Text = ""
    paused_until: _Seconds = 0.0
    events: _Count = 0
    last_event: _Text = ""
    last_at: _Seconds = 0.0
    started: _Count = 0
    last_run: _Text = ""
    waiting: _Count = 0
    dropped: _Count = 0
    last_dropped: _Text = ""
