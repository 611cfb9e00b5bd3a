"""What is sent to the engine running a run, and its answers: a cancel, a decision on a held
task, a request for the run's state (docs/protocol.md: "Commands (cancel)", "Decisions on a
held task", "Snapshots").

A reader asks on :func:`snapshot_request_topic`; a writer sends a cancel on
:func:`cancel_topic` and a decision on :func:`decide_topic`, and reads the engine's answer under
:func:`reply_filter`; the writers of these requests are ``cascade.control``'s. What a person
asks of every verb of steering is one request type here, checked where it is made
(:class:`ControlError` naming the field): :class:`Pause`, :class:`Limit`, :class:`Resume`,
:class:`Cancel`, :class:`Decide` (in the engine's own process too, ``Engine.decide``) and
:class:`Start` (``cascade.control`` exports them again and sends them). The engine's side (its
command filter, the strict decoding of the requests it takes) is
:mod:`~cascade.interfaces.wire`'s.
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
        cancel_topic,
        decode_cancel_reply,
        reply_filter,
        reply_topic,
    )
    from ._decisions import (
        Decided,
        DecisionReply,
        DecisionRequest,
        decide_topic,
        decode_decision_reply,
    )
    from ._requests import (
        Cancel,
        Decide,
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
