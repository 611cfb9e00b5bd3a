"""The wire templates: each one's output is byte for byte msgspec's encoding of its schema, and
writes every field of it but those left to the schema's own encoding."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from cascade.interfaces import (
    Envelope,
    Heartbeat,
    RunSnapshot,
    SnapshotTask,
    TaskStateEvent,
    decode_envelope,
)
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLevel, LogLine, decode_log_batch
from cascade.interfaces.wire import (
    LOG_LINE_FORMAT,
    SNAPSHOT_TASK_FORMAT,
    envelope_formats,
    log_batch_format,
    log_line_fields,
    snapshot_with_tasks,
)

_encode = msgspec.json.encode
SECOND, MICRO = b"2026-11-20T23:11:05", 540744
TS = "2026-11-20T23:11:05.540744+00:00"
# Fields a template leaves to its schema's encoding (the rare events that carry them).
TASK_STRUCT_ONLY = {
    "held_by",
    "cancelled",
    "traceback",
    "decided",
    "reused_from",
    "cached",
    "not_kept",
    "items",
}
IDS = [
    ("r", "o", "p", "h-1", None),
    ('run%s"', 'o"rg', "prøject", "100%b}", "0123456789abcdef0123456789abcdef"),
    ("%%b}", "%d", "p\u2013", 'src"%d', None),
]


def _names(struct: type[msgspec.Struct]) -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(struct)}


def _task(error: str) -> TaskStateEvent:
    return TaskStateEvent(
        task_id='id"%', task_name="n%s", state="FAILED", duration_ms=12.5, error=error
    )


def _fields(body: TaskStateEvent) -> tuple[bytes, ...]:
    """A task's fields as the templates take them: encoded, its state unquoted."""
    return (
        _encode(body.task_id),
        _encode(body.task_name),
        body.state.encode(),
        _encode(body.duration_ms),
        _encode(body.error),
    )


@pytest.mark.parametrize(("run_id", "org_id", "project_id", "source", "trace_id"), IDS)
@pytest.mark.parametrize("error", ["", 'KeyError: "k" \u2013 ünïcode\n%s'])
def test_task_envelope_is_the_schema_encoding(
    run_id: str, org_id: str, project_id: str, source: str, trace_id: str | None, error: str
) -> None:
    """A task's event formatted straight is its Envelope's encoding, byte for byte."""
    formats = envelope_formats(run_id, org_id, project_id, source, trace_id)
    body = _task(error)
    fast = formats.task % (SECOND, MICRO, 7, *_fields(body))
    envelope = Envelope(
        ts=TS,
        run_id=run_id,
        org_id=org_id,
        project_id=project_id,
        source=source,
        trace_id=msgspec.UNSET if trace_id is None else trace_id,
        seq=7,
        body=body,
    )
    assert fast == _encode(envelope)
    assert decode_envelope(fast) == envelope
    assert fast == formats.event % (SECOND, MICRO, 7, _encode(body))


@pytest.mark.parametrize(("run_id", "org_id", "project_id", "source", "trace_id"), IDS)
def test_plain_envelope_is_the_schema_encoding(
    run_id: str, org_id: str, project_id: str, source: str, trace_id: str | None
) -> None:
    """An envelope without seq (a heartbeat's) is its Envelope's encoding, byte for byte."""
    formats = envelope_formats(run_id, org_id, project_id, source, trace_id)
    body = Heartbeat(running=2, dropped_telemetry=1)
    envelope = Envelope(
        ts=TS,
        run_id=run_id,
        org_id=org_id,
        project_id=project_id,
        source=source,
        trace_id=msgspec.UNSET if trace_id is None else trace_id,
        body=body,
    )
    assert formats.plain % (SECOND, MICRO, _encode(body)) == _encode(envelope)


def test_the_templates_write_every_field_of_their_schemas() -> None:
    """A field added to Envelope or TaskStateEvent without its template fails here."""
    formats = envelope_formats("r", "o", "p", "h", "0123456789abcdef0123456789abcdef")
    args = (SECOND, MICRO, 1, b'"t"', b'"n"', b"RUNNING", b"0.0", b'""')
    written = json.loads(formats.task % args)
    assert set(written) == _names(Envelope)
    assert set(written["body"]) - {"type"} == _names(TaskStateEvent) - TASK_STRUCT_ONLY


def test_snapshot_task_is_the_schema_encoding() -> None:
    """A snapshot's task formatted straight is its SnapshotTask's encoding, with every field
    but those left to the schema."""
    body = _task('Boom: "%s"')
    fast = SNAPSHOT_TASK_FORMAT % (3, SECOND, MICRO, *_fields(body))
    task = SnapshotTask(
        seq=3,
        ts=TS,
        task_id=body.task_id,
        task_name=body.task_name,
        state=body.state,
        duration_ms=body.duration_ms,
        error=body.error,
    )
    assert fast == _encode(task)
    assert set(json.loads(fast)) == _names(SnapshotTask) - TASK_STRUCT_ONLY


def test_snapshot_with_tasks_is_the_schema_encoding() -> None:
    """A snapshot's encoded head and tasks joined are its RunSnapshot's encoding."""
    tasks = [
        SnapshotTask(seq=n, ts=TS, task_id=f"t{n}", task_name="n", state="RUNNING") for n in (1, 2)
    ]
    head = RunSnapshot(after=0, through=2, last_seq=2, planned=2, running=2)
    joined = snapshot_with_tasks(_encode(head), [_encode(task) for task in tasks])
    head.tasks = tasks
    assert joined == _encode(head)
    assert snapshot_with_tasks(_encode(RunSnapshot(after=0, through=0, last_seq=0)), []) == (
        _encode(RunSnapshot(after=0, through=0, last_seq=0))
    )


def test_snapshot_with_tasks_refuses_what_does_not_end_with_them() -> None:
    """Bytes that do not end with the empty list of tasks (a field after it) are refused."""
    with pytest.raises(ValueError, match="empty list of tasks"):
        snapshot_with_tasks(b'{"tasks":[],"more":1}', [b"{}"])


@pytest.mark.parametrize(("run_id", "org_id", "project_id", "source", "trace_id"), IDS)
def test_a_log_batch_template_decodes_to_its_schema_with_every_field(
    run_id: str, org_id: str, project_id: str, source: str, trace_id: str | None
) -> None:
    """A batch of two lines (one with the optional fields a line may have) and a drop, made by
    the templates, decodes to the LogBatch of the same values, and writes every field of
    LogBatch and LogLine (their encodings leave defaults out, so the bytes differ in order
    and defaults only: the decoded structs are what must agree)."""
    fields = log_line_fields('t"%', "n%s", 2, trace_id, "0123456789abcdef")
    plain = LOG_LINE_FORMAT % (SECOND, MICRO, fields, 7, b"INFO", _encode("lg"), _encode("hi"))
    full = LOG_LINE_FORMAT % (
        SECOND, MICRO, fields + b'"stream":"stderr","level_number":25,', 8, b"WARNING",
        _encode(""), _encode('m%s"'),
    )  # fmt: skip
    dropped = [DroppedLines(task_id="t", task_name="n", lines=3, reason="budget")]
    payload = log_batch_format(run_id, org_id, project_id, source) % (
        4,
        SECOND,
        MICRO,
        b",".join([plain, full]),
        _encode(dropped),
    )

    def logged(n: int, level: LogLevel, logger: str, message: str, **more: Any) -> LogLine:
        return LogLine(ts=TS, task_id='t"%', task_name="n%s", attempt=2, trace_id=trace_id,
                       span_id="0123456789abcdef", n=n, level=level, logger=logger,
                       message=message, **more)  # fmt: skip

    expected = LogBatch(
        run_id=run_id, org_id=org_id, project_id=project_id, source=source, seq=4, ts=TS,
        lines=[logged(7, "INFO", "lg", "hi"),
               logged(8, "WARNING", "", 'm%s"', stream="stderr", level_number=25)],
        dropped=dropped,
    )  # fmt: skip
    assert decode_log_batch(payload) == expected
    raw = json.loads(payload)
    assert set(raw) == _names(LogBatch)
    written = set(raw["lines"][1]) | {"trace_id"}  # None when the run is not traced
    assert written == _names(LogLine)
