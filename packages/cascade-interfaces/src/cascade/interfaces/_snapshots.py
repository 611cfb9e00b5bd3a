"""Asking a run's engine for the run's state: the request and its topics.

A reader that joins a run late, or finds a hole in its events (``seq``), asks the engine
running the run for a :class:`~cascade.interfaces.RunSnapshot`, as Sparkplug B's hosts
ask an edge node for a rebirth. The request goes, QoS 1 and not retained, to
``{prefix}/command/{run_id}/snapshot``; the engine answers every reader at once on the
run's ``{prefix}/telemetry/{org}/{project}/{run_id}/snapshot``, which readers of the
run's telemetry already receive, at most once a second (requests meanwhile share the next
answer). A reader's asking and what it takes of an answer are the reader's
(``cascade.reader``: ``SnapshotAsker``, ``answer_part_refusal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES
from ._topics import DEFAULT_PREFIX, _telemetry, encode_level

__all__ = [
    "SnapshotRequest",
    "decode_snapshot_request",
    "snapshot_request_topic",
    "snapshot_topic",
]


def snapshot_request_topic(run_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/command/{run_id}/snapshot``: where the engine running ``run_id`` listens.

    No org nor project level, unlike a cancel's or a decision's topic: any reader may ask (a
    view that joined late, or one that does not know yet where the run is: its answer, on the
    run's own telemetry topic, says so), the answer goes only to those who may read that
    run's telemetry, and an engine answers a run at most once a second whoever asks."""
    return f"{prefix}/command/{encode_level(run_id)}/snapshot"


def snapshot_topic(
    org_id: str,
    project_id: str,
    run_id: str,
    prefix: str = DEFAULT_PREFIX,
    source: str | None = None,
) -> str:
    """``{prefix}/telemetry/{org}/{project}/{run_id}/snapshot``: where the engine answers
    (with ``source``: ``.../snapshot/{source}``, as :func:`events_topic`)."""
    return _telemetry(prefix, org_id, project_id, run_id, "snapshot", source)


class SnapshotRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A reader's request for ``run_id``'s state: it knows the run's events up to ``after``
    (``0``: nothing), so the answer lists the tasks whose latest event came later."""

    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    after: Annotated[int, msgspec.Meta(ge=0)] = 0


def decode_snapshot_request(data: Mapping[str, Any] | bytes | str) -> SnapshotRequest:
    """Decode and validate an untrusted snapshot request; raises :class:`InvalidMessageError`."""
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"command payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    return convert(data, SnapshotRequest)
