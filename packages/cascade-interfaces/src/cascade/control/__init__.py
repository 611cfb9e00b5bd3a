"""Steering as a Python API: pause, resume, limit and cancel what engines run, and decide on
their held tasks, over any :class:`~cascade.interfaces.Connector`.

:class:`Controller` is the whole of it for most callers::

    async with connector:  # connected; its topic_prefix says which deployment
        control = Controller(connector, issued_by="alice")
        steered = await control.pause("task:load_*", ttl=3600, reason="maintenance")
        await control.resume("task:load_*")
        answer = await control.cancel(await control.resolve_run("58a88765cea2"))
        decided = await control.retry(run_id, "load", reason="API back")  # a held task

Bad input raises :class:`ControlError` (a ``ValueError``) naming the field at fault before
anything is sent. The steps it is made of are here too, for faces that validate first and
publish later (the `cascade` command, the dashboard): building constraints
(:func:`pause_constraint`, :func:`limit_constraints`), publishing them
(:func:`set_constraints`, :func:`clear_constraints`), a cancel (:func:`request_cancel`), a
decision (:func:`decision_request`, :func:`request_decision`) and run ids
(:func:`checked_prefix`, :func:`one_run`). Served workflows: who serves what
(:func:`served`), a start or a rerun asked of one (:func:`start`, or :func:`start_request`
then :func:`send_start`) and the end of the run it started (:func:`wait_run`). Who may
steer what in a team is :mod:`cascade.control.access`.
"""

from ._answers import Answer, AnswerJudge, CancelAnswer, Refusal
from ._cancel import describe_reply, request_cancel
from ._constraints import (
    CONSTRAINT_TYPES,
    MAX_CONCURRENCY,
    clear_topics,
    limit_constraints,
    parse_constraint_type,
    pause_constraint,
    resume_topics,
    validate_scope,
)
from ._controller import Cleared, Controller, Steered
from ._decision_text import ago, describe_decided
from ._decisions import MAX_TASK_LENGTH, DecisionAnswer, request_decision
from ._errors import ControlError
from ._operator import (
    MAX_OPERATOR_LENGTH,
    MAX_REASON_LENGTH,
    checked_name,
    checked_reason,
    checked_text,
    default_operator,
)
from ._publishing import (
    PublishRefusedError,
    clear_constraints,
    publish_confirmed,
    say_issued,
    set_constraints,
)
from ._requests import Cancel, Decide, Limit, Pause, Resume, Start, decision_request, read_request
from ._run_end import RunEndError, RunEnds, wait_run
from ._run_ids import (
    FULL_ID,
    LIVE_WAIT,
    SHORT_ID,
    HeardRuns,
    Recorded,
    checked_prefix,
    heard_run_ids,
    is_full,
    live_wait,
    one_run,
    recorded_in,
    short_id,
)
from ._run_owner import HeardOwner
from ._served import Served, ServedHeard, served
from ._start_errors import (
    NobodyServesError,
    ServedInManyPlacesError,
    StartError,
    StartTimeoutError,
)
from ._start_request import MIN_RERUN_PREFIX, RERUN_MODES, start_request
from ._starting import StartJudge, send_start, start

__all__ = [
    "Cancel",
    "Decide",
    "Limit",
    "Pause",
    "Resume",
    "Start",
    "read_request",
    "CONSTRAINT_TYPES",
    "FULL_ID",
    "LIVE_WAIT",
    "MAX_CONCURRENCY",
    "MAX_OPERATOR_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_TASK_LENGTH",
    "MIN_RERUN_PREFIX",
    "RERUN_MODES",
    "SHORT_ID",
    "Answer",
    "AnswerJudge",
    "CancelAnswer",
    "Cleared",
    "ControlError",
    "Controller",
    "DecisionAnswer",
    "HeardOwner",
    "HeardRuns",
    "NobodyServesError",
    "PublishRefusedError",
    "Recorded",
    "Refusal",
    "RunEndError",
    "RunEnds",
    "Served",
    "ServedHeard",
    "ServedInManyPlacesError",
    "StartError",
    "StartJudge",
    "StartTimeoutError",
    "Steered",
    "ago",
    "checked_name",
    "checked_prefix",
    "checked_reason",
    "checked_text",
    "clear_constraints",
    "clear_topics",
    "decision_request",
    "default_operator",
    "describe_reply",
    "describe_decided",
    "heard_run_ids",
    "is_full",
    "limit_constraints",
    "live_wait",
    "one_run",
    "parse_constraint_type",
    "pause_constraint",
    "publish_confirmed",
    "recorded_in",
    "request_cancel",
    "request_decision",
    "resume_topics",
    "say_issued",
    "send_start",
    "served",
    "set_constraints",
    "short_id",
    "start",
    "start_request",
    "validate_scope",
    "wait_run",
]
