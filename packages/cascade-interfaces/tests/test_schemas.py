"""Message schemas: exact wire format, and strict decoding that names the field at fault."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from cascade.interfaces import (
    Constraint,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LifecycleEvent,
    SnapshotTask,
    StatusMessage,
    TaskStateEvent,
    decode_constraint,
    decode_envelope,
    decode_status,
    encode_payload,
    parse_rate,
    validate_scope,
)

MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024  # the protocol's bound, as docs/protocol.md states it


def _envelope(body: Any) -> dict[str, Any]:
    env = Envelope(run_id="r1", org_id="local", project_id="default", source="h-1", body=body)
    decoded: dict[str, Any] = json.loads(encode_payload(env))
    return decoded


def test_task_state_envelope_wire_format() -> None:
    """A task event carries exactly the protocol's fields, ``error`` as ``""`` when none."""
    wire = _envelope(
        TaskStateEvent(task_id="t1", task_name="fetch", state="COMPLETED", duration_ms=12.5)
    )
    assert set(wire) == {"v", "ts", "run_id", "org_id", "project_id", "source", "body"}
    assert wire["v"] == "1.0"
    assert wire["ts"].endswith("+00:00")
    assert wire["body"] == {
        "type": "TaskStateEvent",
        "task_id": "t1",
        "task_name": "fetch",
        "state": "COMPLETED",
        "duration_ms": 12.5,
        "error": "",
    }


def test_lifecycle_wire_format() -> None:
    """ENGINE_STARTED has ``event`` and the planned ``tasks``; ENGINE_STOPPED status and error."""
    assert _envelope(LifecycleEvent(event="ENGINE_STARTED"))["body"] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STARTED",
    }
    assert _envelope(LifecycleEvent(event="ENGINE_STARTED", tasks=30))["body"] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STARTED",
        "tasks": 30,
    }
    stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="ValueError: x")
    assert _envelope(stopped)["body"] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STOPPED",
        "status": "Failed",
        "error": "ValueError: x",
    }


def test_envelope_round_trip_ignores_unknown_fields() -> None:
    """Readers ignore fields they do not know."""
    wire = _envelope(Heartbeat(running=2, dropped_telemetry=1))
    wire["future_field"] = {"x": 1}
    wire["body"]["future_body_field"] = 3
    decoded = decode_envelope(wire)
    assert decoded.body == Heartbeat(running=2, dropped_telemetry=1)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda w: w.pop("run_id"), "$"),
        (lambda w: w["body"].update(state="DONE"), "$.body.state"),
        (lambda w: w["body"].update(type="Nope"), "$.body.type"),
        (lambda w: w["body"].update(duration_ms="1"), "$.body.duration_ms"),
        (lambda w: w["body"].update(duration_ms=-1), "$.body.duration_ms"),
    ],
)
def test_envelope_errors_name_the_field(mutate: Any, path: str) -> None:
    """A bad envelope is rejected with the path of the bad field."""
    wire = _envelope(TaskStateEvent(task_id="t", task_name="n", state="RUNNING"))
    mutate(wire)
    with pytest.raises(InvalidMessageError) as caught:
        decode_envelope(wire)
    assert caught.value.path == path


PROTOCOL_EXAMPLES = [
    b'{"id": "pause-global", "scope": "global", "type": "pause", "params": {}, "expires_at": null}',
    b'{"id": "concurrency-task:api_*", "scope": "task:api_*", "type": "concurrency", '
    b'"params": {"limit": 2}, "expires_at": null}',
    b'{"id": "ratelimit-task:api_call", "scope": "task:api_call", "type": "rate_limit", '
    b'"params": {"rate": "10/m"}, "expires_at": 1795216272.19}',
]


@pytest.mark.parametrize("raw", PROTOCOL_EXAMPLES)
def test_protocol_examples_decode_and_round_trip(raw: bytes) -> None:
    """The constraint examples of docs/protocol.md decode, and re-encode to the same object."""
    constraint = decode_constraint(raw)
    assert json.loads(encode_payload(constraint)) == json.loads(raw)


def test_builders_match_protocol_examples() -> None:
    """Constraint.pause/concurrency/rate_limit produce the protocol's own ids and shapes."""
    assert encode_payload(Constraint.pause("global")) == encode_payload(
        decode_constraint(PROTOCOL_EXAMPLES[0])
    )
    assert Constraint.concurrency("task:api_*", 2) == decode_constraint(PROTOCOL_EXAMPLES[1])
    limited = Constraint.rate_limit("task:api_call", "10/m", expires_at=1795216272.19)
    assert limited == decode_constraint(PROTOCOL_EXAMPLES[2])


def _constraint(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "c",
        "scope": "global",
        "type": "concurrency",
        "params": {"limit": 1},
        "expires_at": None,
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        (_constraint(params={"limit": -1}), "$.params.limit", ">= 0"),
        (_constraint(params={"limit": 1.5}), "$.params.limit", "int"),
        (_constraint(params={"limit": True}), "$.params.limit", "bool"),
        (_constraint(params={"limit": 2**40}), "$.params.limit", "<="),
        (_constraint(params={}), "$.params", "limit"),
        (_constraint(params=[]), "$.params", "object"),
        (_constraint(type="stop"), "$.type", "stop"),
        (_constraint(type=None), "$.type", "null"),
        (_constraint(scope=""), "$.scope", "length"),
        (_constraint(scope=7), "$.scope", "str"),
        (_constraint(id="x" * 300), "$.id", "length"),
        (_constraint(expires_at="soon"), "$.expires_at", "str"),
        (_constraint(expires_at=1e300), "$.expires_at", "<="),
        (_constraint(expires_at=-5), "$.expires_at", ">= 0"),
        (_constraint(type="rate_limit", params={"rate": "fast"}), "$.params.rate", "fast"),
        (_constraint(type="rate_limit", params={"rate": "0/s"}), "$.params.rate", "positive"),
        (_constraint(type="rate_limit", params={"rate": -1}), "$.params.rate", "> 0"),
        (_constraint(type="rate_limit", params={"rate": "1/d"}), "$.params.rate", "1/d"),
        (
            _constraint(type="rate_limit", params={"rate": "5/m", "capacity": 0.5}),
            "$.params.capacity",
            ">= 1",
        ),
        ({"scope": "global", "type": "pause"}, "$", "id"),
    ],
)
def test_bad_constraints_name_field_and_problem(payload: Any, path: str, reason: str) -> None:
    """Every malformed control message is rejected, naming the field and what is wrong."""
    with pytest.raises(InvalidMessageError, match=reason) as caught:
        decode_constraint(payload)
    assert caught.value.path == path


@pytest.mark.parametrize(
    "raw",
    [b"[]", b"nope", b'{"id": NaN}', b"\xff", b"{" * 40_000, b'{"id": "\xff", "scope": "global"}'],
)
def test_bad_constraint_bytes(raw: bytes) -> None:
    """Bytes that are not a JSON object are rejected, never raised as anything else."""
    with pytest.raises(InvalidMessageError):
        decode_constraint(raw)


def test_oversized_control_payload_rejected_before_parsing() -> None:
    """Payloads over the limit are refused by size."""
    raw = json.dumps(_constraint(id="x", pad="y" * MAX_CONTROL_PAYLOAD_BYTES)).encode()
    with pytest.raises(InvalidMessageError, match="bytes"):
        decode_constraint(raw)


@pytest.mark.parametrize(
    ("rate", "per_second"),
    [
        ("10/m", 10 / 60),
        ("0.5/s", 0.5),
        ("2/h", 2 / 3600),
        ("3", 3.0),
        (4, 4.0),
        (0.25, 0.25),
        (" 6 / m ", 0.1),
        (".5/s", 0.5),
        ("1e3", 1000.0),
        ("2.5E-1/m", 0.25 / 60),
    ],
)
def test_parse_rate(rate: str | float, per_second: float) -> None:
    """Rates are read in tasks per second."""
    assert parse_rate(rate) == pytest.approx(per_second)


def test_rate_limit_capacity_never_below_one() -> None:
    """A rate below one per second still gets a bucket that holds one token."""
    assert Constraint.rate_limit("global", "1/m").capacity == 1.0
    assert Constraint.rate_limit("global", "20/s").capacity == 20.0
    assert Constraint.rate_limit("global", "20/s", capacity=3).capacity == 3.0


@pytest.mark.parametrize(
    ("scope", "name", "applies"),
    [
        ("global", "anything", True),
        ("task:api_*", "api_call", True),
        ("task:api_*", "db", False),
        ("task:API_*", "api_call", False),
        ("task:a?c", "abc", True),
        ("team:x", "x", False),
        ("tasks", "tasks", False),
    ],
)
def test_scope_matching(scope: str, name: str, applies: bool) -> None:
    """``global`` is every task, ``task:<glob>`` is fnmatch on the name, other scopes none."""
    assert Constraint.pause(scope).applies_to(name) is applies


def test_status_decoding_accepts_old_and_new() -> None:
    """Old tools' ``{"status": ...}`` decodes; a full birth keeps every field."""
    assert decode_status(b'{"status": "online"}') == StatusMessage(status="online")
    full = StatusMessage(status="offline", source="h-1", session=3, ts="t", reason="shutdown")
    assert decode_status(encode_payload(full)) == full
    with pytest.raises(InvalidMessageError, match="status"):
        decode_status(b'{"status": "gone"}')


def test_stale_offline_does_not_supersede_newer_online() -> None:
    """A will from an older session never marks a reconnected source offline."""
    online = StatusMessage(status="online", session=5)
    assert not StatusMessage(status="offline", session=4).supersedes(online)
    assert StatusMessage(status="offline", session=5).supersedes(online)
    assert StatusMessage(status="offline").supersedes(online)
    assert StatusMessage(status="online", session=1).supersedes(online)


@pytest.mark.parametrize(
    "scope", ["global", "task:api_*", "task:a/b", "task:*", "schedule:nightly", "schedule:a-1_b"]
)
def test_known_scopes_accepted(scope: str) -> None:
    """``global`` and ``task:<glob>`` (engines apply them), ``schedule:<name>`` (servers)."""
    assert validate_scope(scope) == scope


@pytest.mark.parametrize(
    "scope",
    ["", "tasks", "task:", "team:x", "Global", "global:x", "schedule:", "schedule:a*", "schedule"],
)
def test_unknown_scopes_rejected(scope: str) -> None:
    """Anything else is rejected at ``$.scope``."""
    with pytest.raises(InvalidMessageError, match="unknown scope") as caught:
        validate_scope(scope)
    assert caught.value.path == "$.scope"


def test_trace_id_is_optional_and_omitted_when_unset() -> None:
    """``trace_id`` is on the wire only when set; envelopes without it decode as before."""
    body = LifecycleEvent(event="ENGINE_STARTED")
    assert "trace_id" not in _envelope(body)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    env = Envelope(
        run_id="r1", org_id="o", project_id="p", source="s", trace_id=trace_id, body=body
    )
    wire = json.loads(encode_payload(env))
    assert wire["trace_id"] == trace_id
    assert decode_envelope(wire).trace_id == trace_id


@pytest.mark.parametrize(
    "bad", ["4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f", "x" * 32, "\x1b]0;t" + "0" * 27, 7]
)
def test_trace_id_must_be_32_lowercase_hex_digits(bad: object) -> None:
    """A ``trace_id`` that is not 32 lowercase hex digits is rejected, naming the field."""
    wire = {"run_id": "r", "org_id": "o", "project_id": "p", "source": "s", "trace_id": bad,
            "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}}  # fmt: skip
    with pytest.raises(InvalidMessageError, match="trace_id"):
        decode_envelope(wire)


def test_a_snapshot_entry_says_where_a_result_it_did_not_compute_came_from() -> None:
    """A snapshot's task, taken as its event, keeps ``cached`` and ``reused_from``."""
    entry = msgspec.convert(
        {"seq": 3, "ts": "2026-11-27T10:00:00+00:00", "task_id": "t-3", "task_name": "t",
         "state": "COMPLETED", "cached": True, "reused_from": "r0"},
        SnapshotTask,
    )  # fmt: skip
    event = entry.event()
    assert (event.cached, event.reused_from) == (True, "r0")
    ran = {"seq": 1, "ts": "x", "task_id": "t", "task_name": "t", "state": "COMPLETED"}
    assert msgspec.convert(ran, SnapshotTask).event().cached is msgspec.UNSET
