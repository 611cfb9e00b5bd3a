"""The engine side of the wire: what the packages that implement Cascade's protocol share of
it, beyond what a user of the protocol needs (the rest of ``cascade.interfaces``).

Engines (``cascade.runtime``), readers and writers (``cascade.reader``, ``cascade.control``, the
history's recorder, the CLI, the dashboard) and the testkit import from here:

- the bounds an engine cuts what it sends to and a reader checks what it takes by
  (docs/protocol.md states each), and the cutting of errors and tracebacks to them;
- the checks of what a person puts in a request (who, why, which run), which the request types
  of :mod:`cascade.interfaces.commands` make and ``cascade.control`` makes again;
- the engine's side of the commands and served workflows: the strict decoding of the requests
  it takes, its command and start filters, the topic it lists its runs of an org and project
  on, the slot claims by which serving processes fire a schedule's slot once (and a
  trigger's event once: the run ends triggers hear, what an announcement says of a trigger);
- the parts of messages only an engine writes (a reader gets them as attributes), and the type
  aliases of the schemas' fields;
- a constraint scope's place (:func:`split_scope`, :func:`place_scope`) and the topic levels'
  matcher;
- the byte templates an engine formats its busiest messages with (each byte for byte
  msgspec's encoding of its schema).

Versioned with the family: these names may change in any minor version of
``cascade-interfaces`` (0.1 to 0.2), and every Cascade package pins the minor it is released
with (``cascade-interfaces>=0.1,<0.2``); a package outside the family that imports this module
pins the same way. Each name is imported from its room when first used
(:mod:`cascade.interfaces.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._asked import (
        FULL_ID,
        MAX_OPERATOR_LENGTH,
        MAX_REASON_LENGTH,
        checked_name,
        checked_prefix,
        checked_reason,
        checked_text,
        default_operator,
        is_full,
        new_request_id,
    )
    from ._cleared import (
        constraint_topic_of_note,
    )
    from ._commands import (
        MAX_LISTED_TASKS,
        TaskRef,
        check_reply_topic,
        command_filter,
        decode_cancel_request,
    )
    from ._constraint import (
        ConstraintType,
        ScopeParts,
        place_scope,
        split_scope,
    )
    from ._decisions import (
        Decision,
        DecisionOutcome,
        decode_decision_request,
    )
    from ._graphs import (
        MAX_GRAPH_BYTES,
        MAX_GRAPH_ID_LENGTH,
        MAX_GRAPH_NODES,
        GraphNode,
    )
    from ._holds import (
        APPROVAL,
        MAX_BLOCKED_TASKS,
        MAX_HOLDERS,
        MAX_HOLDS,
        MAX_PROMPT_LENGTH,
        QUEUED,
        BlockedTask,
    )
    from ._issued import (
        IssuedAction,
        login_of,
    )
    from ._limits import (
        MAX_CONTROL_PAYLOAD_BYTES,
        MAX_ERROR_LENGTH,
        MAX_NUMBER,
        MAX_SIGNAL_PAYLOAD_BYTES,
        MAX_TRACEBACK_LENGTH,
        payload_limit,
        truncate_error,
        truncate_traceback,
    )
    from ._logs import (
        LOG_LEVELS,
        MAX_LOG_LINE_BYTES,
        LogLevel,
        level_number,
    )
    from ._requests import (
        read_request,
    )
    from ._schedules import (
        SLOT_REQUEST_PREFIX,
        Catchup,
        Overlap,
        SlotClaim,
        decode_slot_claim,
        slot_claim_topic,
        slot_claims_filter,
        slot_from_stamp,
        slot_request_id,
        slot_stamp,
        split_slot_claim_topic,
    )
    from ._schemas import (
        MAX_SNAPSHOT_TASKS,
        Body,
        RunStatus,
        TaskState,
        waiting_state,
    )
    from ._serving import (
        MAX_PLAN_STEPS,
        SHARED_GROUP,
        BackfillSlot,
        PlanAction,
        RerunMode,
        ServedRun,
        StartOutcome,
        check_workflow_name,
        decode_start_request,
        shared_start_filter,
        start_filter,
        start_topic_workflow,
    )
    from ._snapshots import (
        decode_snapshot_request,
    )
    from ._start_request import (
        MIN_RERUN_PREFIX,
    )
    from ._summary import (
        MAX_SUMMARY_RUNS,
        placed_summaries,
        placed_summary_topic,
    )
    from ._topics import (
        levels_match,
    )
    from ._triggers import (
        TRIGGER_REQUEST_PREFIX,
        EndStatus,
        RunEnded,
        ServedTrigger,
        TriggerKind,
        decode_run_ended,
        ended_filter,
        ended_topic,
        event_key,
        split_trigger_claim_topic,
        trigger_claim_topic,
        trigger_claims_filter,
        trigger_request_id,
    )
    from ._wire import (
        LOG_LINE_FORMAT,
        SNAPSHOT_TASK_FORMAT,
        EnvelopeFormats,
        envelope_formats,
        log_batch_format,
        log_line_fields,
        snapshot_with_tasks,
    )

__all__, __getattr__, __dir__ = lazy_exports(__name__)
