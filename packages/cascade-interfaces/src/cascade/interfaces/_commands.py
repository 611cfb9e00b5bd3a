"""Commands: a request to the engine running a run, and its answer (docs/protocol.md, "Commands").

A command is not state: it is published without retain at QoS 1, each engine subscribes
only to the runs it runs (with a clean session), and an engine that is away when it is
sent never gets it. The answer goes to a topic named by the request's ``id``, which the
requester subscribed to before it asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._decisions import DecisionReply
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._topics import DEFAULT_PREFIX, decode_level, encode_level, same_source

__all__ = [
    "MAX_LISTED_TASKS",
    "CancelOutcome",
    "CancelReply",
    "CancelRequest",
    "TaskRef",
    "cancel_topic",
    "command_filter",
    "decode_cancel_reply",
    "decode_cancel_request",
    "check_reply_topic",
    "reply_filter",
    "reply_topic",
]

MAX_LISTED_TASKS = 32
"""The most tasks of each kind a cancel's answer names (its counts count them all)."""
_READ_LIMIT = 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

CancelOutcome: TypeAlias = Literal["cancelled", "already_cancelled"]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]
_RequestId = Annotated[str, msgspec.Meta(pattern=f"^{_REQUEST_ID.pattern}$")]


def _command(org_id: str, project_id: str, run_id: str, prefix: str) -> str:
    levels = (encode_level(org_id), encode_level(project_id), encode_level(run_id))
    return f"{prefix}/command/" + "/".join(levels)


def cancel_topic(org_id: str, project_id: str, run_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/command/{org}/{project}/{run_id}/cancel``: where the engine running
    ``run_id`` (a run of ``org_id`` and ``project_id``) listens; the org and project levels,
    encoded as the telemetry topics' are, let a broker ACL bind who may cancel in each."""
    return f"{_command(org_id, project_id, run_id, prefix)}/cancel"


def command_filter(org_id: str, project_id: str, run_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/command/{org}/{project}/{run_id}/+``: every command (cancel, decide) to the
    engine running ``run_id`` of ``org_id`` and ``project_id`` (snapshot requests, which any
    reader may send, have their own topic:
    :func:`~cascade.interfaces.commands.snapshot_request_topic`)."""
    return f"{_command(org_id, project_id, run_id, prefix)}/+"


def reply_topic(org_id: str, request_id: str, source: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/reply/{org}/{id}/{source}``: where ``source`` (an engine) answers the request
    ``id`` about a run of ``org_id``.

    The org level (encoded as the telemetry topics' is) lets a broker ACL give a
    requester the answers of its own orgs only (``cascade/reply/acme/#``); the last level
    names the answering engine, so that a broker ACL lets each engine answer only as itself
    (``pattern write cascade/reply/+/+/%u``). Raises :class:`InvalidMessageError` unless
    ``id`` is 1 to 64 of ``A-Z a-z 0-9 _ -``: an engine builds the topic from a request it
    received, so no request can make it publish anywhere but under ``{prefix}/reply/``.
    """
    if not _REQUEST_ID.fullmatch(request_id):
        raise InvalidMessageError("a request id is 1 to 64 of A-Z a-z 0-9 _ -", "$.id")
    levels = (encode_level(org_id), encode_level(request_id), encode_level(source))
    return f"{prefix}/reply/" + "/".join(levels)


def reply_filter(
    request_id: str | None = None, prefix: str = DEFAULT_PREFIX, org_id: str | None = None
) -> str:
    """``{prefix}/reply/{org}/{id}/+``: the answers to the request ``id`` about a run of
    ``org_id``, whichever engine sends them; a part left ``None`` matches any (without
    either, ``{prefix}/reply/+/+/+``: every answer, the recorder's audit)."""
    org = "+" if org_id is None else encode_level(org_id)
    return f"{prefix}/reply/{org}/{'+' if request_id is None else encode_level(request_id)}/+"


def check_reply_topic(
    reply: CancelReply | DecisionReply, topic: str, prefix: str = DEFAULT_PREFIX
) -> None:
    """Raise :class:`InvalidMessageError` unless ``reply`` came on its own topic: an org level,
    its request's ``id`` and, as the last level, its ``source`` (what a broker ACL binds)."""
    levels = topic.removeprefix(f"{prefix}/reply/").split("/")
    if len(levels) != 3:
        raise InvalidMessageError(f"an answer on {topic[:200]!r}, not a reply topic")
    _, request_id, source = levels
    if decode_level(request_id) != reply.id:
        raise InvalidMessageError(f"the answer to {reply.id!r} on another topic", "$.id")
    if not same_source(reply.source, source):
        raise InvalidMessageError(
            f"an answer from {reply.source!r} on {source!r}'s topic", "$.source"
        )


class CancelRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``cascade cancel``'s request: cancel ``run_id``; answer on :func:`reply_topic` of ``id``
    (and of the run's org, which the engine knows).

    ``issued_by`` and ``reason`` are what the requester claims (nothing checks them);
    ``issued_at`` is epoch seconds.
    """

    id: _RequestId
    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    issued_by: str | None = None
    reason: str | None = None
    issued_at: _Seconds | None = None


class TaskRef(msgspec.Struct, kw_only=True):
    """A task named in an answer: its id and name."""

    task_id: str
    task_name: str


_Tasks = Annotated[list[TaskRef], msgspec.Meta(max_length=_READ_LIMIT)]


class CancelReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The engine's answer: what it cancelled of ``run_id``.

    ``cancelled``: coroutine tasks that were running, now cancelled; ``abandoned``:
    plain-function tasks running in threads, which Python cannot stop: they run to
    their end and their results are discarded; ``not_started``: tasks that will not
    start. The lists name at most :data:`MAX_LISTED_TASKS` each; the counts count all.
    ``outcome`` is ``already_cancelled`` when an earlier request had cancelled it.

    ``issued_by``, ``reason`` and ``issued_at`` echo the request's (additive, optional:
    engines before them leave them out), so that the answer alone records the cancel
    (the history's audit reads it): who asked, why, when, what was stopped.
    """

    id: _RequestId
    run_id: str
    source: str
    outcome: Annotated[str, msgspec.Meta(max_length=64)] = "cancelled"
    cancelled: _Tasks = msgspec.field(default_factory=list)
    cancelled_count: _Count = 0
    abandoned: _Tasks = msgspec.field(default_factory=list)
    abandoned_count: _Count = 0
    not_started: _Count = 0
    issued_by: str | None = None
    reason: str | None = None
    issued_at: _Seconds | None = None


def _checked_size(data: Mapping[str, Any] | bytes | str) -> None:
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"command payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )


def decode_cancel_request(data: Mapping[str, Any] | bytes | str) -> CancelRequest:
    """Decode and validate an untrusted cancel request; raises :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, CancelRequest)


def decode_cancel_reply(data: Mapping[str, Any] | bytes | str) -> CancelReply:
    """Decode and validate an engine's answer to a cancel; raises :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, CancelReply)
