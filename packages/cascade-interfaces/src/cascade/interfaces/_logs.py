"""Task logs on the wire: what a run's tasks logged, in batches, on a topic of their own.

An engine forwards the records its tasks log (standard :mod:`logging`, and optionally what
they print) as :class:`LogBatch` messages on ``{prefix}/logs/{org}/{project}/{run_id}``
(``.../{source}`` on the sourced layout), QoS 0, never retained. The existing Cascade
tools subscribe to ``{prefix}/telemetry/#`` and never see them. Lines beyond the engine's
budgets are dropped and counted: each batch says how many of each task's lines were
dropped since the previous one (:class:`DroppedLines`), so a reader can say "312 lines
dropped" where they are missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._limits import MAX_LOG_PAYLOAD_BYTES
from ._schemas import PROTOCOL_VERSION, TraceId
from ._topics import DEFAULT_PREFIX, encode_level

__all__ = [
    "LOG_LEVELS",
    "MAX_LOG_LINE_BYTES",
    "MAX_LOG_PAYLOAD_BYTES",
    "DroppedLines",
    "LogBatch",
    "LogLevel",
    "LogLine",
    "decode_log_batch",
    "level_number",
    "logs_filter",
    "logs_topic",
]

LogLevel: TypeAlias = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
"""A log line's ``level``: the name of a level of :mod:`logging`."""
LOG_LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
"""The levels of :mod:`logging`, by name: a record of another level is sent as the nearest
named one below it (``level_number`` keeps its number)."""

MAX_LOG_LINE_BYTES = 16 * 1024
"""The longest message a reader keeps of one line; an engine cuts longer ones (its own
budget, 4 KiB by default, is lower) and says so."""

_Count = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
_SpanId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{16}$")]
_READ_LINES = 10_000  # lines a reader takes in one batch at most (engines send far fewer)


class LogLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One record a task logged (or, with ``stream``, a line it printed).

    ``ts`` is when it was logged (ISO 8601 in UTC), ``attempt`` the task's attempt that
    logged it, ``n`` its number among the task's lines (1, 2, ...: counting the dropped
    ones too, so a gap in ``n`` is lines dropped or missed), ``level`` its level's name and
    ``level_number`` its number where it is not that name's, ``logger`` the logger's name
    (``""`` for a print), ``message`` the formatted message with its traceback if any
    (cut to the engine's budget, ending ``… (N more bytes)``). ``trace_id`` and
    ``span_id`` are the attempt's OpenTelemetry span where the run is traced.
    """

    ts: str
    task_id: _Id
    task_name: _Id
    message: str
    level: LogLevel = "INFO"
    attempt: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 1
    n: _Count = 0
    logger: str = ""
    level_number: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    stream: Literal["stdout", "stderr"] | None = None
    trace_id: TraceId | None = None
    span_id: _SpanId | None = None


class DroppedLines(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Lines of one task the engine dropped since its previous batch, and why:
    ``rate`` (over the task's or the run's lines per second), ``budget`` (over the task's
    lines in all), ``queue`` (the engine's queue was full: the broker too slow or away)."""

    task_id: _Id
    task_name: _Id
    lines: Annotated[int, msgspec.Meta(ge=1, le=10**15)]
    reason: Literal["rate", "budget", "queue"] = "rate"


class LogBatch(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One message of a run's logs: its lines in the order they were logged, and the lines
    dropped since the previous batch. ``seq`` numbers the run's batches 1, 2, 3, ... so a
    reader can count batches it missed (QoS 0)."""

    run_id: _Id
    org_id: _Id
    project_id: _Id
    source: _Id
    seq: Annotated[int, msgspec.Meta(ge=1, le=10**15)]
    ts: str
    v: str = PROTOCOL_VERSION
    lines: Annotated[list[LogLine], msgspec.Meta(max_length=_READ_LINES)] = msgspec.field(
        default_factory=list
    )
    dropped: Annotated[list[DroppedLines], msgspec.Meta(max_length=_READ_LINES)] = msgspec.field(
        default_factory=list
    )


def level_number(line: LogLine) -> int:
    """The line's level as a number (``logging.INFO`` is 20)."""
    return line.level_number if line.level_number is not None else LOG_LEVELS[line.level]


def logs_topic(
    org_id: str,
    project_id: str,
    run_id: str,
    prefix: str = DEFAULT_PREFIX,
    source: str | None = None,
) -> str:
    """``{prefix}/logs/{org}/{project}/{run_id}``, each id encoded; with ``source``, the
    sourced layout ``.../{run_id}/{source}`` a broker ACL can bind to a login."""
    levels = [prefix, "logs", *(encode_level(v) for v in (org_id, project_id, run_id))]
    if source is not None:
        levels.append(encode_level(source))
    return "/".join(levels)


def logs_filter(
    org_id: str | None = None,
    project_id: str | None = None,
    run_id: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """A filter over log topics of both layouts; each part left as ``None`` matches any."""
    parts = ("+" if v is None else encode_level(v) for v in (org_id, project_id, run_id))
    return "/".join((prefix, "logs", *parts, "#"))


def decode_log_batch(data: Mapping[str, Any] | bytes | str) -> LogBatch:
    """Decode and validate a log batch; raises :class:`InvalidMessageError`."""
    return convert(data, LogBatch)
