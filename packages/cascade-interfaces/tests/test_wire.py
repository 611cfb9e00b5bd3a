"""The engine side of the wire (``cascade.interfaces.wire``): the engine's byte templates
(each one's output is byte for byte msgspec's encoding of its schema, and writes every field of
it but those left to the schema's own encoding), the bounds and cuts of what an engine sends,
and the topics and names only an engine or a writer of constraints reads."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from cascade.interfaces import (
    Constraint,
    ConstraintTopicError,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    RunSnapshot,
    SnapshotTask,
    TaskStateEvent,
    constraint_from_topic,
    constraint_topic,
    constraint_topic_key,
    decode_envelope,
    topic_matches,
    validate_scope,
)
from cascade.interfaces.commands import cancel_topic, decide_topic, snapshot_request_topic
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, decode_log_batch
from cascade.interfaces.notes import cleared_topic, issued_topic
from cascade.interfaces.wire import (
    LOG_LINE_FORMAT,
    MAX_ERROR_LENGTH,
    MAX_TRACEBACK_LENGTH,
    SNAPSHOT_TASK_FORMAT,
    LogLevel,
    ScopeParts,
    check_workflow_name,
    command_filter,
    constraint_topic_of_note,
    decode_snapshot_request,
    decode_start_request,
    envelope_formats,
    level_number,
    log_batch_format,
    log_line_fields,
    login_of,
    payload_limit,
    place_scope,
    placed_summary_topic,
    shared_start_filter,
    snapshot_with_tasks,
    split_scope,
    start_filter,
    start_topic_workflow,
    truncate_error,
    truncate_traceback,
)

_encode = msgspec.json.encode
MAX_PARAMS_BYTES = 16 * 1024  # the protocol's bound, as docs/protocol.md states it
START_REQUEST = {"id": "r1", "workflow": "nightly", "params": {"day": "2026-11-25"}}
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


def test_payload_limits_by_kind() -> None:
    """Readers bound telemetry, status and control payloads; other kinds are not theirs."""
    assert payload_limit("telemetry") == 256 * 1024
    assert payload_limit("status") == 16 * 1024
    assert payload_limit("constraints") == 64 * 1024
    assert payload_limit("reply") == 64 * 1024
    assert payload_limit("logs") == 256 * 1024
    assert payload_limit("summary") == 64 * 1024
    assert payload_limit("signal") == 64 * 1024  # what cs.recv takes
    assert payload_limit("index") is None


def test_long_errors_are_cut_and_say_so() -> None:
    """An engine sends at most MAX_ERROR_LENGTH characters of an error, and how many it left."""
    assert truncate_error("ValueError: x") == "ValueError: x"
    cut = truncate_error("E" * (MAX_ERROR_LENGTH + 5))
    assert cut.startswith("E" * MAX_ERROR_LENGTH)
    assert cut.endswith("… (5 more characters)")


def test_long_tracebacks_keep_their_start_and_end_and_say_so() -> None:
    """A traceback over MAX_TRACEBACK_LENGTH loses frames in its middle, says how many
    characters, and keeps where it began and the raising line with its exception."""
    short = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: x\n'
    assert truncate_traceback(short) == short
    long = "Traceback (most recent call last):\n" + "F" * MAX_TRACEBACK_LENGTH + "\nValueError: x"
    cut = truncate_traceback(long)
    assert cut.startswith("Traceback (most recent call last):\n")
    assert cut.endswith("F\nValueError: x")
    left_out = len(long) - MAX_TRACEBACK_LENGTH
    assert f"\n… ({left_out} more characters)\n" in cut
    assert len(cut) - len(f"\n… ({left_out} more characters)\n") == MAX_TRACEBACK_LENGTH


@pytest.mark.parametrize("prefix", ["cascade", "acme/prod"])
def test_a_clear_notes_topic_names_its_constraint_topic(prefix: str) -> None:
    """constraint → note → constraint, under any prefix; only a note topic names one."""
    topic = constraint_topic("task:api_*", "pause", prefix)
    assert constraint_topic_of_note(cleared_topic(topic, prefix), prefix) == topic
    with pytest.raises(ValueError, match="not a clear note's topic"):
        constraint_topic_of_note("cascade/constraints/global/pause")


def test_the_engines_command_filter_takes_its_runs_cancels_and_decisions() -> None:
    """The engine running a run listens on {prefix}/command/{org}/{project}/{run_id}/+; a
    snapshot request keeps its own topic, which the filter does not match (any reader may ask)."""
    run = "58a88765cea2c1d0a1f3c2b7e9d84a61"
    engine = command_filter("acme", "etl", run)
    assert engine == f"cascade/command/acme/etl/{run}/+"
    assert topic_matches(engine, cancel_topic("acme", "etl", run))
    assert topic_matches(engine, decide_topic("acme", "etl", run))
    assert not topic_matches(engine, cancel_topic("globex", "etl", run))
    assert not topic_matches(engine, decide_topic("acme", "web", run))
    assert not topic_matches(engine, snapshot_request_topic(run))


def test_a_lines_level_number_is_its_own_or_its_levels() -> None:
    """A line's level as a number: the one it carries, else its level's in ``logging``."""
    line = LogLine(ts="t", task_id="a", task_name="a", message="", level="INFO")
    assert level_number(line) == 20
    assert level_number(LogLine(ts="t", task_id="a", task_name="a", message="", level="DEBUG",
                                level_number=5)) == 5  # fmt: skip


def test_a_serving_process_s_filters_and_its_workflows_names() -> None:
    """What a serving process subscribes to: its workflows' shared requests, and those
    addressed to it; a workflow's name is 1 to 64 of A-Z a-z 0-9 _ -."""
    assert shared_start_filter("acme", "etl", "nightly") == (
        "$share/cascade/cascade/start/acme/etl/nightly"
    )
    assert start_filter("acme", "etl", "w1") == "cascade/start/acme/etl/+/w1"
    with pytest.raises(ValueError, match="1 to 64"):
        check_workflow_name("night ly")


def test_a_start_topic_names_its_workflow() -> None:
    """The workflow level of a start request's topic, shared or addressed; nothing else is one."""
    assert start_topic_workflow("cascade/start/acme/etl/nightly") == "nightly"
    assert start_topic_workflow("p/q/start/acme/etl/nightly/w1", "p/q") == "nightly"
    for topic in ("cascade/start/nightly", "cascade/start/nightly/w1", "cascade/served/a/b/c/d",
                  "cascade/start/a/b/c/d/e", "other/start/a/b/c"):  # fmt: skip
        assert start_topic_workflow(topic) is None, topic


@pytest.mark.parametrize(
    "payload",
    [b"{", b"[]", b'{"run_id": ""}', b'{"run_id": "r", "after": -1}', b"x" * 70_000],
)
def test_malformed_snapshot_requests_are_refused(payload: bytes) -> None:
    """Not JSON, not an object, an empty run id, a negative after, over 64 KiB: refused."""
    with pytest.raises(InvalidMessageError):
        decode_snapshot_request(payload)


def test_an_issued_notes_login_is_its_topics_level_decoded() -> None:
    """``worker1.example.com`` notes on ``issued/worker1%2Eexample%2Ecom``; read back as itself."""
    topic = issued_topic("worker1.example.com")
    assert topic == "cascade/issued/worker1%2Eexample%2Ecom"
    assert login_of(topic) == "worker1.example.com"
    with pytest.raises(ValueError, match="not an issued note"):
        login_of("cascade/issued/a/b")


def test_a_start_request_decodes_with_its_defaults() -> None:
    request = decode_start_request(START_REQUEST)
    assert (request.workflow, request.params, request.rerun, request.dry_run) == (
        "nightly",
        {"day": "2026-11-25"},
        "failure",
        False,
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"workflow": "a.b"}, "$.workflow"),
        ({"workflow": "a/b"}, "$.workflow"),
        ({"id": "a/b"}, "$.id"),
        ({"rerun_of": "abc"}, "$.rerun_of"),
        ({"rerun_of": "ABCDEF12"}, "$.rerun_of"),
        ({"params": {"x": "y" * MAX_PARAMS_BYTES}}, "params are at most"),
        ({"rerun_of": "abcdef12", "rerun": "from"}, "from_task goes with"),
        ({"from_task": "load", "rerun_of": "abcdef12"}, "from_task goes with"),
        ({"dry_run": True}, "go with rerun_of"),
        ({"params": []}, "$.params"),
    ],
)
def test_a_bad_start_request_is_refused_naming_why(change: dict[str, object], path: str) -> None:
    with pytest.raises(InvalidMessageError, match=path.replace("$", r"\$")):
        decode_start_request({**START_REQUEST, **change})


def test_an_oversized_start_request_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(InvalidMessageError, match="at most"):
        decode_start_request(b"{" + b" " * 70_000 + b"}")


def test_placed_summary_topics_name_org_project_and_source_levels() -> None:
    """Where an engine lists its runs of one org and project: each id one encoded level."""
    assert placed_summary_topic("e/1", "a.b", "etl") == "cascade/summary/a%2Eb/etl/e%2F1"


# -- constraint scopes placed in an org or a project: their text, their topic, and back
@pytest.mark.parametrize(
    ("scope", "parts", "topic"),
    [
        ("task:etl_*", ScopeParts(None, None, "task:etl_*"), "task/etl_%2A"),
        ("org:acme/task:etl_*", ScopeParts("acme", None, "task:etl_*"), "org/acme/task/etl_%2A"),
        (
            "project:acme/etl/task:load",
            ScopeParts("acme", "etl", "task:load"),
            "project/acme/etl/task/load",
        ),
        ("org:acme/task:a/b", ScopeParts("acme", None, "task:a/b"), "org/acme/task/a%2Fb"),
        ("org:acme/schedule:nightly", ScopeParts("acme", None, "schedule:nightly"), None),
        ("org:a%2Eb/task:x", ScopeParts("a.b", None, "task:x"), "org/a%2Eb/task/x"),
        ("project:a%2Fb/c%2Ad/task:*", ScopeParts("a/b", "c*d", "task:*"), None),
    ],
)
def test_a_placed_scope_splits_and_has_one_topic_that_reads_back(
    scope: str, parts: ScopeParts, topic: str | None
) -> None:
    """Its parts, its topic (the place's levels first), and the topic read back to it."""
    assert validate_scope(scope) == scope
    assert split_scope(scope) == parts
    assert place_scope(parts.target, parts.org, parts.project) == scope
    built = constraint_topic(scope, "pause")
    if topic is not None:
        assert built == f"cascade/constraints/{topic}/pause"
    assert constraint_topic_key(built) == (scope, "pause")
    assert constraint_topic_key(constraint_topic(scope)) == (scope, None)


@pytest.mark.parametrize(
    ("scope", "says"),
    [
        ("org:acme", "names no tasks"),
        ("org:acme/", "names no tasks"),
        ("project:acme/task:x", "names no tasks"),
        ("org:acme/global", "'task:*' there"),
        ("org:a.b/task:x", "'org:a%2Eb/task:x'"),  # the org as its topic level, one way only
        ("org:/task:x", "empty"),
        ("org:acme/tsk:x", "unknown scope"),
        ("org:acme/schedule:a b", "unknown scope"),
    ],
)
def test_a_malformed_placed_scope_is_refused_saying_why(scope: str, says: str) -> None:
    """Refused at ``$.scope`` with what to write instead."""
    with pytest.raises(InvalidMessageError, match=says.replace("*", r"\*").replace(".", r"\.")):
        validate_scope(scope)


def test_a_placed_scope_covers_its_place_only() -> None:
    """An org's covers each of its projects; a project's that project alone."""
    org, project = split_scope("org:acme/task:*"), split_scope("project:acme/etl/task:*")
    assert org.covers("acme", "etl")
    assert org.covers("acme", "web")
    assert not org.covers("globex", "etl")
    assert project.covers("acme", "etl")
    assert not project.covers("acme", "web")
    assert not project.covers("globex", "etl")
    assert split_scope("task:*").covers("globex", "anything")


def test_a_placed_constraint_governs_the_tasks_of_its_place_only() -> None:
    """``applies_to`` without a place: no task of a placed scope; with one, its own."""
    paused = Constraint.pause("org:acme/task:etl_*")
    assert paused.applies_to("etl_load", "acme", "etl")
    assert not paused.applies_to("etl_load", "globex", "etl")
    assert not paused.applies_to("web", "acme", "etl")
    assert not paused.applies_to("etl_load")
    assert Constraint.pause("task:etl_*").applies_to("etl_load", "globex", "x")


def test_an_unplaced_payload_on_an_org_s_topic_is_refused() -> None:
    """An acme operator's topic cannot carry a fleet-wide (or another org's) pause."""
    topic = constraint_topic("org:acme/task:*", "pause")
    for scope in ("task:*", "org:globex/task:*", "global"):
        payload = json.dumps({"id": "p", "scope": scope, "type": "pause", "params": {}})
        with pytest.raises(ConstraintTopicError):
            constraint_from_topic(topic, payload)
    payload = json.dumps({"id": "p", "scope": "org:acme/task:*", "type": "pause", "params": {}})
    assert constraint_from_topic(topic, payload).scope == "org:acme/task:*"


def test_a_project_needs_its_org() -> None:
    """``place_scope`` of a project alone is a ValueError."""
    with pytest.raises(ValueError, match="without its org"):
        place_scope("task:x", None, "etl")
