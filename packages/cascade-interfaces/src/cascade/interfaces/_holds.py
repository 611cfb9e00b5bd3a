"""What holds a blocked task back: the ``held_by`` of a BLOCKED event, and a heartbeat's list
of the tasks blocked now (docs/protocol.md, additive fields)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ._limits import MAX_NUMBER

__all__ = [
    "APPROVAL",
    "MAX_BLOCKED_TASKS",
    "MAX_HOLDERS",
    "MAX_HOLDS",
    "MAX_PROMPT_LENGTH",
    "QUEUED",
    "BlockedTask",
    "Hold",
]

MAX_HOLDS = 8
"""The most holds an engine names for one task (constraints beyond are left out)."""
MAX_HOLDERS = 8
"""The most task names a concurrency hold lists among those holding its slots (and the most
task ids a resource hold lists among those holding the resource)."""
MAX_BLOCKED_TASKS = 16
"""The most blocked tasks a heartbeat lists (``blocked`` counts them all)."""
MAX_PROMPT_LENGTH = 1024
"""The longest prompt (characters) an engine sends on a gate's hold."""
QUEUED = "queued"
"""The ``type`` of the hold of a task handed to its executor that waits for a worker."""
APPROVAL = "approval"
"""The ``kind`` of a ``decision`` hold that is a gate's: it awaits a person's approval."""
# What a reader accepts: more than engines send, so that a later engine's longer lists
# are not taken for malformed messages; anything beyond is refused as malformed.
_READ_LIMIT = 256

_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Amount = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]


class Hold(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One thing that holds a task back. ``type`` says which, and which fields it has:

    - ``pause``: ``scope`` (and the constraint's ``reason``, ``issued_by`` if it has them);
    - ``concurrency``: ``scope``, ``limit``, ``running`` (tasks of the scope running now)
      and ``holders`` (their names, with how many run under each; at most
      :data:`MAX_HOLDERS` names), and the constraint's ``reason``, ``issued_by``;
    - ``rate_limit``: ``scope``, ``rate`` and ``next_start`` (epoch seconds, when the
      next task of the scope may start), and the constraint's ``reason``, ``issued_by``;
    - ``sync``: no task starts until the broker's retained constraints are all in
      (after a (re)connection, at most the engine's ``sync_hold``);
    - ``decision``: the task failed on its last automatic ``attempt`` under
      ``on_failure="hold"`` and waits for a decision (retry, skip, complete or fail;
      :class:`~cascade.interfaces.commands.DecisionRequest`) until ``deadline`` (epoch seconds),
      when the engine takes ``default``. Readers show such a task ``HELD``. A gate's hold
      (``gate(prompt)``: held from its start, no attempt ran) has ``kind`` ``approval`` and
      its ``prompt`` (at most :data:`MAX_PROMPT_LENGTH` characters), ``attempt`` 1, and a
      ``default`` of ``fail``, ``skip`` or ``complete``; additive: a reader that knows neither
      field shows it as any held task;
    - ``resource``: the task asks ``amount`` of the engine's system resource ``resource``
      (``with_constraints``), of which ``in_use`` of its ``capacity`` is held now by the
      tasks ``users`` names (task id and amount; at most :data:`MAX_HOLDERS`, the largest);
      or it would fit, but ``ahead`` (a task id) has waited for it since earlier, and
      starts first;
    - ``queued``: the task was handed to its executor, whose ``workers`` are all busy
      (``executor``: ``threads`` or ``processes``); it is ``RUNNING`` once a worker starts
      it. Readers that know it show the task ``QUEUED``.

    Readers take other types too (a later engine's), showing at least the type.
    """

    type: Annotated[str, msgspec.Meta(max_length=64)]
    scope: str | None = None
    reason: str | None = None
    issued_by: str | None = None
    limit: _Count | None = None
    running: _Count | None = None
    holders: Annotated[dict[str, _Count], msgspec.Meta(max_length=_READ_LIMIT)] | None = None
    rate: str | None = None
    next_start: _Seconds | None = None
    attempt: Annotated[int, msgspec.Meta(ge=1)] | None = None
    deadline: _Seconds | None = None
    default: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    resource: str | None = None
    amount: _Amount | None = None
    in_use: _Amount | None = None
    capacity: _Amount | None = None
    users: Annotated[dict[str, _Amount], msgspec.Meta(max_length=_READ_LIMIT)] | None = None
    ahead: str | None = None
    kind: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    prompt: Annotated[str, msgspec.Meta(max_length=4 * MAX_PROMPT_LENGTH)] | None = None
    executor: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    workers: _Count | None = None

    @property
    def awaits_decision(self) -> bool:
        """Whether this hold waits for a decision: a failed task's, or a gate's."""
        return self.type == "decision"

    @property
    def awaits_approval(self) -> bool:
        """Whether this hold is a gate's, waiting for a person's approval (``prompt``)."""
        return self.type == "decision" and self.kind == APPROVAL

    @property
    def awaits_worker(self) -> bool:
        """Whether this hold is an executor's: the task waits for one of its workers."""
        return self.type == QUEUED


Holds = Annotated[list[Hold], msgspec.Meta(max_length=_READ_LIMIT)]


class BlockedTask(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A task blocked at a heartbeat: since when (epoch seconds), and what holds it *now*
    (an empty ``held_by``: nothing any more; it starts at the engine's next free slot)."""

    task_id: str
    task_name: str
    since: _Seconds | None = None
    held_by: Holds = msgspec.field(default_factory=list)


BlockedTasks = Annotated[list[BlockedTask], msgspec.Meta(max_length=_READ_LIMIT)]
