"""What is sent to the engine running a run, and its answers: a cancel, a decision on a held
task, a request for the run's state (docs/protocol.md: "Commands (cancel)", "Decisions on a
held task", "Snapshots").

An engine listens on :func:`command_filter` and :func:`snapshot_request_topic`, decodes each
request strictly, and answers a cancel or a decision on :func:`reply_topic`; the writers of
these requests are ``cascade.control``'s. What a person asks of every verb of steering is one
request type here, checked where it is made (:class:`ControlError` naming the field):
:class:`Pause`, :class:`Limit`, :class:`Resume`, :class:`Cancel`, :class:`Decide` (in the
engine's own process too, ``Engine.decide``) and :class:`Start`, and :func:`read_request` reads
one from a JSON body; the checks of who issues a request, why, and the run it names are here
with them (``cascade.control`` exports them again and sends them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._asked import (
        ControlError,
    )
    from ._commands import (
        CancelReply,
        CancelRequest,
        TaskRef,
        cancel_topic,
        decode_cancel_reply,
        decode_cancel_request,
        reply_filter,
        reply_topic,
    )
    from ._decisions import (
        Decide,
        Decided,
        Decision,
        DecisionCount,
        DecisionReply,
        DecisionRequest,
        decide_topic,
        decode_decision_reply,
        decode_decision_request,
    )
    from ._requests import (
        Cancel,
        Limit,
        Pause,
        Resume,
        Start,
    )
    from ._snapshots import (
        SnapshotRequest,
        snapshot_request_topic,
    )

__all__, __getattr__, __dir__ = lazy_exports(__name__)
