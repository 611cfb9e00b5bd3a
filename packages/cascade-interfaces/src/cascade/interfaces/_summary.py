"""An engine's summary: what a fleet view reads instead of every event (docs/protocol.md).

Each engine (each source) publishes one retained message on ``{prefix}/summary/{source}``:
its runs by status, its tasks by state across them, its rate of events and its drops, and
a few of its runs. A reader of thousands of engines subscribes to ``{prefix}/summary/+``
and the engines' status, and to a run's telemetry only when someone opens that run.

That topic names no org, so a broker cannot bind the runs it lists to the login's orgs: the
engine also publishes, per org and project of the runs it lists, the summary of those runs
alone on ``{prefix}/summary/{org}/{project}/{source}`` (:func:`placed_summary_topic`), which
an ACL binds as it binds the runs' telemetry. Readers take a listed run from there only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from ._constraint import convert
from ._limits import MAX_SUMMARY_PAYLOAD_BYTES
from ._schemas import PROTOCOL_VERSION, TraceId, utc_now_iso
from ._topics import DEFAULT_PREFIX, encode_level, same_place

__all__ = [
    "MAX_SUMMARY_PAYLOAD_BYTES",
    "MAX_SUMMARY_RUNS",
    "EngineSummary",
    "RunTally",
    "SummaryRun",
    "TaskTally",
    "decode_summary",
    "misplaced_runs",
    "placed_summaries",
    "placed_summary_filter",
    "placed_summary_topic",
    "summary_filter",
    "summary_messages",
    "summary_topic",
]

MAX_SUMMARY_RUNS = 20
"""Runs an engine lists in its summary at most: its live runs first, then the latest ended."""

# What a reader accepts: more than engines send, so that a later engine's longer list is
# not taken for a malformed message (the payload bound holds it anyway).
_SUMMARY_READ_RUNS = 200

_Count = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
_Rate = Annotated[float, msgspec.Meta(ge=0, le=1e15)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


# The summary's structs are plain data that cannot hold a cycle, so the garbage collector
# need not track them (gc=False): a reader of a fleet holds tens of thousands, which every
# full collection would otherwise walk, the reader's loop paused meanwhile.


class TaskTally(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Tasks by state: across an engine's runs in its summary, or of one listed run.

    ``cancelled`` tasks are counted in ``failed`` too, as on the wire; ``held`` tasks (held
    for a decision, additive) in ``blocked`` too, as they are published ``BLOCKED``.
    """

    running: _Count = 0
    blocked: _Count = 0
    held: _Count = 0
    pending: _Count = 0
    completed: _Count = 0
    failed: _Count = 0
    skipped: _Count = 0
    cancelled: _Count = 0

    def __add__(self, other: TaskTally) -> TaskTally:
        return TaskTally(
            **{name: getattr(self, name) + getattr(other, name) for name in self.__struct_fields__}
        )


class RunTally(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """An engine's runs by status since it started: live, and ended by how they ended
    (``cancelled`` runs are counted in ``failed`` too)."""

    running: _Count = 0
    succeeded: _Count = 0
    failed: _Count = 0
    cancelled: _Count = 0


class SummaryRun(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One run in an engine's summary: where it is, how it stands, its tasks by state.

    ``status`` is ``Running`` until its ``ENGINE_STOPPED``, then that event's status;
    ``last_seq`` its latest event's number (a reader that opens the run asks for a snapshot
    from there). ``started`` and ``ended`` are ISO 8601 in UTC; ``name`` (additive) is the
    run's name; ``carried_on_from`` (additive) the run it carries on, where a server carried
    on that run after its engine died (its ``origin.carried_on_from``): a reader of summaries
    alone counts that run carried on, not stranded.
    """

    run_id: _Id
    org_id: _Id
    project_id: _Id
    status: Literal["Running", "Succeeded", "Failed"]
    started: str
    tasks: TaskTally
    planned: _Count = 0
    last_seq: _Count = 0
    ended: str | None = None
    cancelled: bool = False
    trace_id: TraceId | None = None
    name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    carried_on_from: _Id | None = None


class EngineSummary(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """The retained summary of one engine (source), published on :func:`summary_topic`.

    ``runs`` and ``tasks`` count every run the engine started since it started (the tasks
    of ended runs as they ended); ``events`` its telemetry events, ``events_per_s`` their
    rate over the last interval, ``dropped`` those it had to drop; ``listed``: up to
    :data:`MAX_SUMMARY_RUNS` runs, live first (``more_live``: live runs not listed).
    ``session`` is the connector's, as in its status, so a reader can tell a summary of
    an older process under the same source id.
    """

    source: _Id
    ts: str = msgspec.field(default_factory=utc_now_iso)
    v: str = PROTOCOL_VERSION
    session: _Count | None = None
    runs: RunTally = msgspec.field(default_factory=RunTally)
    tasks: TaskTally = msgspec.field(default_factory=TaskTally)
    events: _Count = 0
    events_per_s: _Rate = 0.0
    dropped: _Count = 0
    listed: Annotated[list[SummaryRun], msgspec.Meta(max_length=_SUMMARY_READ_RUNS)] = (
        msgspec.field(default_factory=list)
    )
    more_live: _Count = 0


def summary_topic(source: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/summary/{source}``, the source encoded (the level an ACL binds)."""
    return f"{prefix}/summary/{encode_level(source)}"


def summary_filter(prefix: str = DEFAULT_PREFIX) -> str:
    """The filter over every engine's summary topic."""
    return f"{prefix}/summary/+"


def placed_summary_topic(
    source: str, org_id: str, project_id: str, prefix: str = DEFAULT_PREFIX
) -> str:
    """``{prefix}/summary/{org}/{project}/{source}``, each level encoded: where an engine
    lists its runs of one org and project (the levels an ACL binds to a login's scopes)."""
    levels = "/".join(encode_level(level) for level in (org_id, project_id, source))
    return f"{prefix}/summary/{levels}"


def placed_summary_filter(prefix: str = DEFAULT_PREFIX) -> str:
    """The filter over every engine's summaries per org and project."""
    return f"{prefix}/summary/+/+/+"


def placed_summaries(
    summary: EngineSummary,
    prefix: str = DEFAULT_PREFIX,
    live: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, EngineSummary]:
    """``summary`` per org and project of the runs it lists, by :func:`placed_summary_topic`:
    each lists that place's runs, with their tasks added up, and counts its live runs
    (``live``: by ``(org_id, project_id)``, those the engine has there, listed or not; by
    default those listed), ``more_live`` being those not listed."""
    places: dict[tuple[str, str], list[SummaryRun]] = {}
    for run in summary.listed:
        places.setdefault((run.org_id, run.project_id), []).append(run)
    made = {}
    for place, runs in places.items():
        tasks = TaskTally()
        for run in runs:
            tasks += run.tasks
        listed_live = sum(run.status == "Running" for run in runs)
        running = max((live or {}).get(place, 0), listed_live)
        made[placed_summary_topic(summary.source, *place, prefix)] = EngineSummary(
            source=summary.source,
            ts=summary.ts,
            session=summary.session,
            runs=RunTally(running=running),
            tasks=tasks,
            listed=runs,
            more_live=running - listed_live,
        )
    return made


def summary_messages(
    summary: EngineSummary, prefix: str = DEFAULT_PREFIX
) -> list[tuple[str, EngineSummary]]:
    """What an engine publishes (retained) for ``summary``: its :func:`placed_summaries`,
    then ``summary`` on its own :func:`summary_topic`, by topic, in that order (a reader that
    takes them in order shows its runs as soon as its figures)."""
    own = (summary_topic(summary.source, prefix), summary)
    return [*placed_summaries(summary, prefix).items(), own]


def misplaced_runs(summary: EngineSummary, topic: str, prefix: str = DEFAULT_PREFIX) -> int:
    """How many of the runs ``summary`` lists are not of the org and project its ``topic``
    (a :func:`placed_summary_topic`) names: a reader refuses a summary that lists any, as a
    run's telemetry is refused off its topic's org and project (the topic is what an ACL
    binds, the payload is not)."""
    return sum(not same_place(topic, run.org_id, run.project_id, prefix) for run in summary.listed)


def decode_summary(data: Mapping[str, Any] | bytes | str) -> EngineSummary:
    """Decode and validate an engine's summary; raises :class:`InvalidMessageError`."""
    return convert(data, EngineSummary)
