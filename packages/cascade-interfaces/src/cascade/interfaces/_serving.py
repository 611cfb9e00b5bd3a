"""Served workflows: what a serving process announces, a request to start or rerun one, and
its answer (docs/protocol.md, "Served workflows").

A process that serves named workflows (``Engine.serve``) announces them, retained, on
:func:`served_topic` of its org, project and source, and takes start requests on
:func:`start_topic` of its org, project and each workflow: through an MQTT shared
subscription (:func:`shared_start_filter`) where the broker has them, so that the broker gives
each request to one of the processes of that org and project serving that name, and on
:func:`addressed_start_topic` of its own source everywhere, for a requester that picks the
process itself (brokers without shared subscriptions, such as RabbitMQ 3.x's MQTT
plugin). Every one of these topics names the org and the project, so that a broker ACL binds
who may start, announce and serve in each org. A request travels as a cancel's does (QoS 1,
not retained) and is answered on :func:`~cascade.interfaces.commands.reply_topic` of its
``id`` by the process that took it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._schedules import ServedSchedule
from ._topics import DEFAULT_PREFIX, decode_level, encode_level
from ._triggers import ServedTrigger

__all__ = [
    "MAX_PARAMS_BYTES",
    "BackfillSlot",
    "MAX_PLAN_STEPS",
    "SHARED_GROUP",
    "PlanAction",
    "PlanStep",
    "RerunMode",
    "RunOrigin",
    "ServedAnnouncement",
    "ServedRun",
    "ServedWorkflow",
    "StartOutcome",
    "StartReply",
    "StartRequest",
    "WorkflowParam",
    "addressed_start_topic",
    "check_workflow_name",
    "decode_served",
    "decode_start_reply",
    "decode_start_request",
    "served_filter",
    "served_topic",
    "shared_start_filter",
    "start_filter",
    "start_topic",
    "start_topic_workflow",
]

MAX_PARAMS_BYTES = 16 * 1024
"""The longest parameters a start request gives a workflow, as JSON."""
MAX_PLAN_STEPS = 5_000
"""The most tasks a dry run's answer lists (its counts count them all)."""
SHARED_GROUP = "cascade"
"""The shared subscription group every serving process joins (``$share/cascade/...``)."""

_WORKFLOW = re.compile(r"[A-Za-z0-9_-]{1,64}")
_READ_LIMIT = 1024
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Text = Annotated[str, msgspec.Meta(max_length=_READ_LIMIT)]
_RequestId = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
_WorkflowName = Annotated[str, msgspec.Meta(pattern=f"^{_WORKFLOW.pattern}$")]
_RunId = Annotated[str, msgspec.Meta(min_length=1, max_length=_READ_LIMIT)]
_RunIdPrefix = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{6,32}$")]
Params: TypeAlias = dict[Annotated[str, msgspec.Meta(max_length=_READ_LIMIT)], Any]

StartOutcome: TypeAlias = Literal["started", "planned", "refused"]
"""An answer's outcome: ``started`` (``run_id`` is the new run's), ``planned`` (a dry run:
``plan`` says what a rerun would do, nothing started) or ``refused`` (``error`` says why)."""
RerunMode: TypeAlias = Literal["failure", "all", "from"]
"""What a rerun executes again: ``failure`` (every task without a stored result whose
fingerprint still matches), ``all`` (every task) or ``from`` (the request's ``from_task`` and
every task downstream of it, besides those of ``failure``)."""
PlanAction: TypeAlias = Literal["run", "reuse", "force", "skip"]
"""What a rerun does with a task: ``reuse`` its stored result, ``run`` it (it had not
succeeded, or its input or code changed), ``force`` it (it had succeeded but its result
is missing, or the request asked for it) or ``skip`` it (``not routed``: no task the rerun
needs takes it, its routers' choices known before it starts)."""


def check_workflow_name(name: str) -> str:
    """``name`` if it can name a served workflow (1 to 64 of ``A-Z a-z 0-9 _ -``: a topic
    level on every broker); else ``ValueError``."""
    if not isinstance(name, str) or not _WORKFLOW.fullmatch(name):
        raise ValueError(f"a workflow's name is 1 to 64 of A-Z a-z 0-9 _ -, not {name!r}")
    return name


def _place(org_id: str, project_id: str) -> str:
    """The org and project levels (each encoded as the telemetry topics' are)."""
    return f"{encode_level(org_id)}/{encode_level(project_id)}"


def served_topic(org_id: str, project_id: str, source: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/served/{org}/{project}/{source}``: where a serving process of ``org_id`` and
    ``project_id`` announces what it serves (a broker ACL binds the org, and the source to
    the login)."""
    return f"{prefix}/served/{_place(org_id, project_id)}/{encode_level(source)}"


def served_filter(
    prefix: str = DEFAULT_PREFIX, *, org_id: str | None = None, project_id: str | None = None
) -> str:
    """``{prefix}/served/+/+/+``: every serving process's announcement; with ``org_id`` and
    ``project_id``, ``{prefix}/served/{org}/{project}/+``: those of that org and project."""
    if org_id is None or project_id is None:
        return f"{prefix}/served/+/+/+"
    return f"{prefix}/served/{_place(org_id, project_id)}/+"


def start_topic(org_id: str, project_id: str, workflow: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/start/{org}/{project}/{workflow}``: a start request any process of that org
    and project serving ``workflow`` may take (one of them, through the shared
    subscription)."""
    name = encode_level(check_workflow_name(workflow))
    return f"{prefix}/start/{_place(org_id, project_id)}/{name}"


def addressed_start_topic(
    org_id: str, project_id: str, workflow: str, source: str, prefix: str = DEFAULT_PREFIX
) -> str:
    """``{prefix}/start/{org}/{project}/{workflow}/{source}``: a start request for the process
    ``source`` (of that org and project)."""
    return f"{start_topic(org_id, project_id, workflow, prefix)}/{encode_level(source)}"


def shared_start_filter(
    org_id: str, project_id: str, workflow: str, prefix: str = DEFAULT_PREFIX
) -> str:
    """``$share/cascade/{prefix}/start/{org}/{project}/{workflow}``: the shared subscription
    through which the broker gives each request on :func:`start_topic` to one of the
    processes of that org and project serving it."""
    return f"$share/{SHARED_GROUP}/{start_topic(org_id, project_id, workflow, prefix)}"


def start_filter(org_id: str, project_id: str, source: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/start/{org}/{project}/+/{source}``: every request addressed to the process
    ``source`` of that org and project."""
    return f"{prefix}/start/{_place(org_id, project_id)}/+/{encode_level(source)}"


def start_topic_workflow(topic: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The workflow a start request's ``topic`` names (``{prefix}/start/{org}/{project}/
    {workflow}``, or addressed, one level more), decoded; ``None`` for a topic of neither
    form."""
    levels = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
    if len(levels) not in (4, 5) or levels[0] != "start":
        return None
    return decode_level(levels[3])


class WorkflowParam(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A parameter of a served workflow: its ``name``, whether it is ``required``, its
    ``default`` (JSON; unset when required), its annotation as written (``int``) and, for a
    ``Param``, its ``description`` (additive)."""

    name: _Text
    required: bool = True
    default: Any = None
    annotation: _Text = ""
    description: _Text = ""


class ServedWorkflow(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A workflow a process serves: its ``name``, ``params`` and first line of ``doc``;
    ``paused`` (additive) while a pause on ``workflow:<name>`` holds its new runs (the
    process refuses its starts and skips its schedules' slots), by whom (``paused_by``),
    why (``paused_reason``) and until when (``paused_until``, epoch seconds; 0: until
    resumed), as the pause says."""

    name: _WorkflowName
    params: Annotated[list[WorkflowParam], msgspec.Meta(max_length=64)] = []
    doc: _Text = ""
    paused: bool = False
    paused_by: _Text = ""
    paused_reason: _Text = ""
    paused_until: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class ServedRun(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A run a serving process started and is running: its ``run_id``, ``workflow`` and,
    for a rerun, the run it reruns (``rerun_of``); for a slot of a schedule, the
    ``schedule`` (additive)."""

    run_id: _RunId
    workflow: _WorkflowName
    rerun_of: _RunId | None = None
    schedule: _WorkflowName | None = None


class ServedAnnouncement(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a serving process serves, retained on :func:`served_topic` of its org, project and
    ``source`` (cleared when it stops serving; its presence says whether it is online). Its
    ``org_id`` and ``project_id`` are its topic's: readers refuse one whose are not.

    ``shared``: it takes requests through the shared subscription (the broker has them);
    else only those addressed to it. ``capacity``: runs it runs at once; ``running``: those
    it runs now; ``queued``: those waiting for a slot (``live`` lists both, running first, at
    most 256).
    ``schedules``: the schedules it fires (additive; docs/schedules.md); ``triggers``: its
    triggers (additive; docs/triggers.md).
    Published again whenever a run starts or ends, so requesters see the load.
    """

    source: _Text
    org_id: _Text
    project_id: _Text
    workflows: Annotated[list[ServedWorkflow], msgspec.Meta(max_length=256)]
    capacity: Annotated[int, msgspec.Meta(ge=1)]
    running: _Count = 0
    queued: _Count = 0
    live: Annotated[list[ServedRun], msgspec.Meta(max_length=256)] = []
    shared: bool = False
    ts: _Text = ""
    schedules: Annotated[list[ServedSchedule], msgspec.Meta(max_length=256)] = []
    triggers: Annotated[list[ServedTrigger], msgspec.Meta(max_length=256)] = []


class BackfillSlot(msgspec.Struct, kw_only=True):
    """The slot a backfill's start request fills: its ``schedule`` and ``slot`` (ISO)."""

    schedule: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
    slot: Annotated[str, msgspec.Meta(max_length=64)]


class StartRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A request to start the served ``workflow`` with ``params`` (JSON, at most
    :data:`MAX_PARAMS_BYTES`), or, with ``rerun_of`` (a run id or a unique prefix of at least
    6 hex digits), to rerun that run: the params it ran with, updated by ``params``,
    executing what ``rerun`` says (``from_task``: a task's id or name, with ``from``).
    ``dry_run``: answer with the plan, start nothing. ``issued_by`` and ``reason`` are the
    requester's claim, ``issued_at`` epoch seconds. The answer goes to
    ``reply_topic(org, id, source)``, ``org`` the serving process's.
    ``backfill`` (additive): the past slot of a schedule (``{"schedule", "slot"}``, the slot
    ISO) it starts, its ``id`` the slot's :func:`~cascade.interfaces.serving.slot_request_id`: a
    server of the schedule claims the slot as its clock would, and starts it only if no claim
    was there before (docs/schedules.md).
    """

    id: _RequestId
    workflow: _WorkflowName
    params: Params = {}
    rerun_of: _RunIdPrefix | None = None
    rerun: RerunMode = "failure"
    from_task: _Text | None = None
    dry_run: bool = False
    issued_by: _Text | None = None
    reason: _Text | None = None
    issued_at: _Seconds | None = None
    backfill: BackfillSlot | None = None

    def __post_init__(self) -> None:
        if len(msgspec.json.encode(self.params)) > MAX_PARAMS_BYTES:
            raise ValueError(f"params are at most {MAX_PARAMS_BYTES} bytes of JSON")
        if (self.rerun == "from") != (self.from_task is not None):
            raise ValueError("from_task goes with rerun 'from', and only with it")
        if self.rerun_of is None and (self.rerun != "failure" or self.dry_run):
            raise ValueError("rerun and dry_run go with rerun_of")


class PlanStep(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a rerun does with one task (:data:`PlanAction`) and ``why``; ``from_run``: the
    run whose result a ``reuse`` takes. A map that runs again, where the items it will make are
    known before the rerun (its lists are given or come from reused results): ``items``, how
    many, and ``items_reused``, how many of them take the result their run kept (additive,
    optional: ``None`` where not known, and from engines before them)."""

    task_id: _Text
    task_name: _Text
    action: PlanAction
    why: _Text = ""
    from_run: _RunId | None = None
    items: _Count | None = None
    items_reused: _Count | None = None


class StartReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The serving process's answer to a :class:`StartRequest`: ``outcome``
    (:data:`StartOutcome`), the new run's ``run_id`` and ``name`` when ``started``, ``error``
    when ``refused``, and for a rerun the ``plan`` (at most :data:`MAX_PLAN_STEPS` steps;
    ``plan_count`` counts them all) and the full id of the run it reruns (``rerun_of``).
    ``queued``: the run waits for a free slot of the process's ``capacity``.
    ``issued_by``, ``reason`` and ``issued_at`` echo the request's.

    A request ``id`` is applied once: a copy of it (QoS 1 resent) gets the same answer.
    """

    id: _RequestId
    source: _Text
    workflow: _WorkflowName
    outcome: StartOutcome
    run_id: _RunId | None = None
    name: _Text | None = None
    rerun_of: _RunId | None = None
    error: Annotated[str, msgspec.Meta(max_length=16 * 1024)] = ""
    queued: bool = False
    plan: Annotated[list[PlanStep], msgspec.Meta(max_length=MAX_PLAN_STEPS)] = []
    plan_count: _Count = 0
    issued_by: _Text | None = None
    reason: _Text | None = None
    issued_at: _Seconds | None = None

    @property
    def started(self) -> bool:
        """Whether the request started a run."""
        return self.outcome == "started"


class RunOrigin(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Where a run came from, on its ``ENGINE_STARTED`` (additive): the served ``workflow``
    and the ``params`` it runs with; for a rerun, the run it reruns (``rerun_of``) and the
    first run of that line (``root_run``); for a run a request started, the request's
    ``request_id``, ``issued_by``, ``reason`` and ``issued_at`` (the audit's row of it); for
    a run a schedule started, its ``schedule`` and the slot it fills, ``scheduled_for`` (ISO,
    UTC; both additive); for a run a server carried on after the engine of the run it carries
    on died, that run (``carried_on_from``), that engine (``lost_engine``) and how many times
    the line was carried on (``carry_ons``; all three additive); for a run a trigger started,
    the ``trigger``, its event said (``trigger_event``: the run it followed, the file, the
    signal), the run it followed (``followed_run``, an ``after`` trigger's) and how many
    triggered runs led to it (``trigger_depth``, 1 for the first; all four additive,
    docs/triggers.md)."""

    workflow: _WorkflowName | None = None
    params: Params | None = None
    rerun_of: _RunId | None = None
    root_run: _RunId | None = None
    request_id: _RequestId | None = None
    issued_by: _Text | None = None
    reason: _Text | None = None
    issued_at: _Seconds | None = None
    schedule: _WorkflowName | None = None
    scheduled_for: _Text | None = None
    carried_on_from: _RunId | None = None
    lost_engine: _Text | None = None
    carry_ons: _Count = 0
    trigger: _WorkflowName | None = None
    trigger_event: _Text | None = None
    followed_run: _RunId | None = None
    trigger_depth: _Count = 0


def _checked_size(data: Mapping[str, Any] | bytes | str) -> None:
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )


def decode_start_request(data: Mapping[str, Any] | bytes | str) -> StartRequest:
    """Decode and validate an untrusted start request; raises :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, StartRequest)


def decode_start_reply(data: Mapping[str, Any] | bytes | str) -> StartReply:
    """Decode and validate a serving process's answer; raises :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, StartReply)


def decode_served(data: Mapping[str, Any] | bytes | str) -> ServedAnnouncement:
    """Decode and validate an untrusted announcement; raises :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, ServedAnnouncement)
