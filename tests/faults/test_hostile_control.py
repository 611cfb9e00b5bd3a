"""Scenario 6: 10,000 hostile control payloads during a run: each rejected, nothing else lost."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import (
    Constraint,
    InvalidMessageError,
    Message,
    constraint_topic,
    decode_constraint,
    decode_payload,
    encode_payload,
    validate_scope,
)
from cascade.runtime import Engine, LazyResult, task
from cascade.testkit import OwnBroker

from .conftest import Figures

MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024  # the protocol's bound, as docs/protocol.md states it

TOTAL = 10_000
GENERATED = 2_500
LIMIT = 2
MEGABYTE = 1024 * 1024

# -- the payloads ---------------------------------------------------------------------------

_text = st.text(max_size=20)
_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10,
)
_scope = st.sampled_from(["global", "task:*", "task:x", "tsk:x", "task:", "", ":", "glob"]) | _text
_type = st.sampled_from(["pause", "concurrency", "rate_limit", "stop", "PAUSE", ""]) | _json
_rate = (
    st.sampled_from(["10/m", "0.5/s", "2/h", "1/d", "-1/s", "0/s", "1e999/s", "/s", "ten/m", " "])
    | _text
    | _numbers
)
_params = st.one_of(
    st.fixed_dictionaries({"limit": _numbers | _text | st.none()}),
    st.fixed_dictionaries({"rate": _rate}, optional={"capacity": _numbers | _text}),
    st.dictionaries(_text, _json, max_size=3),
    _json,
)
_expires = st.one_of(
    st.none(),
    st.sampled_from([0, 1.0, time.time() - 3600, 1e15, 1e16, 4102444800.0, -1]),
    _numbers,
    _text,
)
_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": _text | _json,
    "scope": _scope,
    "type": _type,
    "params": _params,
    "expires_at": _expires,
}
_constraint_like = st.fixed_dictionaries({}, optional=_fields) | st.fixed_dictionaries(
    {k: v for k, v in _fields.items() if k != "expires_at"}, optional={"expires_at": _expires}
)
_payloads = st.one_of(
    _constraint_like.map(lambda d: json.dumps(d).encode()),  # NaN and Infinity as JSON literals
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(min_size=1, max_size=64),
)


def _generated(count: int) -> list[bytes]:
    """``count`` payloads drawn by hypothesis (derandomized, so every run sends the same)."""
    out: list[bytes] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(_payloads)
    def collect(payload: bytes) -> None:
        if payload:  # an empty payload is a valid "clear this topic"
            out.append(payload)

    collect()
    return out


def _mutated(payloads: list[bytes], count: int) -> list[bytes]:
    """Raw-byte mutants of generated payloads: cut short, a byte made 0xFF, wrapped in an array."""
    rand = random.Random(6)
    out: list[bytes] = []
    for i in range(count):
        raw = payloads[i % len(payloads)]
        kind = i % 3
        if kind == 0:
            out.append(raw[: max(1, len(raw) // 2)])
        elif kind == 1:
            at = rand.randrange(len(raw))
            out.append(raw[:at] + b"\xff" + raw[at + 1 :])
        else:
            out.append(b"[" + raw + b"]")
    return out


def _nested(depth: int) -> bytes:
    return b'{"id":' * depth + b"1" + b"}" * depth


def _handmade() -> list[bytes]:
    """The payloads a fuzzer rarely finds by itself."""
    good = {"id": "x", "scope": "global", "type": "concurrency", "params": {"limit": 1}}
    big = "x" * MEGABYTE
    return [
        b"\xff\xfe\xfd",
        b'{"id": "\xff", "scope": "global", "type": "pause", "params": {}}',
        b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
        b"[]",
        b"1",
        b'"pause"',
        b"null",
        b"true",
        b"[" * 100_000 + b"]" * 100_000,
        _nested(50_000),
        _nested(1_000),
        json.dumps({**good, "id": big}).encode(),
        json.dumps({**good, "scope": "task:" + big}).encode(),
        json.dumps([big]).encode(),
        b'"' + big.encode() + b'"',
        json.dumps({**good, "params": {"limit": float("nan")}}).encode(),
        json.dumps({**good, "params": {"limit": float("inf")}}).encode(),
        json.dumps({**good, "expires_at": float("-inf")}).encode(),
        json.dumps({**good, "params": {"limit": -1}}).encode(),
        json.dumps({**good, "params": {"limit": 2**63}}).encode(),
        json.dumps({**good, "params": {"limit": "2"}}).encode(),
        json.dumps({**good, "params": {"limit": 1.5}}).encode(),
        json.dumps({**good, "type": "shutdown"}).encode(),
        json.dumps({**good, "scope": "cluster:all"}).encode(),
        json.dumps({**good, "type": "rate_limit", "params": {"rate": "fast"}}).encode(),
        json.dumps({**good, "type": "rate_limit", "params": {"rate": "0/s"}}).encode(),
        json.dumps({**good, "type": "rate_limit", "params": {"rate": "1e400/s"}}).encode(),
        json.dumps({**good, "expires_at": -5}).encode(),
        json.dumps({**good, "expires_at": 1e300}).encode(),
        json.dumps({**good, "expires_at": "tomorrow"}).encode(),
        b'{"id": "x", "scope": "global", "type": "pause", "params": {}',  # truncated
        b"{}",
        b" ",
        b"\x00",
    ]


def classify(raw: bytes) -> str:
    """Who rejects ``raw``: ``connector`` (not a JSON object), ``engine``, or ``valid``."""
    try:
        decode_payload(raw)
    except InvalidMessageError:
        return "connector"
    if len(raw) > MAX_CONTROL_PAYLOAD_BYTES:
        return "engine"
    try:
        validate_scope(decode_constraint(raw).scope)
    except InvalidMessageError:
        return "engine"
    return "valid"


def _harmless(raw: bytes, number: int) -> bytes:
    """A valid generated constraint moved to a scope no task has, so it cannot stop the run."""
    constraint = decode_constraint(raw)
    constraint.scope = f"task:nomatch_{number}"
    return encode_payload(constraint)


# -- the run --------------------------------------------------------------------------------


@pytest.mark.timeout(240)
async def test_hostile_control_payloads(
    own_broker: OwnBroker, prefix: str, figures: Figures
) -> None:
    """Every invalid payload is counted as rejected; the run and a limit in force are untouched."""
    figures.scenario = "6 hostile control input"
    payloads = _handmade()
    generated = _generated(GENERATED)  # hypothesis takes ~3 ms a payload here: the rest are mutants
    payloads += generated + _mutated(generated, TOTAL - len(payloads) - len(generated))
    assert len(payloads) == TOTAL
    kinds = [classify(raw) for raw in payloads]
    payloads = [
        _harmless(raw, i) if kind == "valid" else raw
        for i, (raw, kind) in enumerate(zip(payloads, kinds, strict=True))
    ]
    invalid = sum(kind != "valid" for kind in kinds)
    valid = len(payloads) - invalid
    assert invalid > TOTAL // 2  # the mix is mostly hostile

    broker = own_broker
    in_force = Constraint.concurrency("task:limited_*", LIMIT)
    in_force_topic = constraint_topic(in_force.scope, "concurrency", prefix)
    connector = MqttConnector(broker.host, broker.port, topic_prefix=prefix, source_id="hostile")
    engine = Engine(connector, max_concurrency=16, heartbeat_interval=None)
    run_started = asyncio.Event()  # the engine has subscribed and applied the limit
    flood_done = asyncio.Event()
    seen_at_end: list[list[Constraint]] = []
    running = 0
    most = 0

    @task
    async def limited_step(i: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.02)
        finally:
            running -= 1
        return i

    @task
    async def gate() -> int:
        run_started.set()
        await flood_done.wait()
        seen_at_end.append(list(engine.constraints))
        return 0

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    steps = [limited_step(i) for i in range(200)]
    target: LazyResult[int] = total([gate(), *steps])

    def sentinel(message: Message) -> None:
        flood_done.set()

    loop = asyncio.get_running_loop()
    async with aiomqtt.Client(broker.host, broker.port) as plain:
        await plain.publish(in_force_topic, encode_payload(in_force), qos=1, retain=True)
        async with MqttConnector(
            broker.host, broker.port, topic_prefix=prefix, presence=False
        ) as operator:  # as `cascade limit` does: indexed where the broker needs it
            await operator.index_constraints(put={in_force_topic: in_force}, timeout=5)
        await connector.connect()
        await connector.subscribe(f"{prefix}/sentinel", sentinel)
        run = asyncio.create_task(engine.run(target))
        started = loop.time()
        await asyncio.wait_for(run_started.wait(), 10)
        hostile_topics = [
            in_force_topic,
            f"{prefix}/constraints/global",
            constraint_topic(in_force.scope, prefix=prefix),  # the scope's own topic
            *(f"{prefix}/constraints/hostile/{n}" for n in range(8)),
        ]
        for i, (raw, kind) in enumerate(zip(payloads, kinds, strict=True)):
            # valid ones only where no constraint in force was set
            topic = (  # a valid one on its own scope's topic, as engines take no other
                constraint_topic(decode_constraint(raw).scope, prefix=prefix)
                if kind == "valid"
                else hostile_topics[i % 11]
            )
            await plain.publish(topic, raw, qos=1)
        await plain.publish(f"{prefix}/sentinel", b"{}", qos=1)
        result = await asyncio.wait_for(run, 120)
        seconds = loop.time() - started
        await plain.publish(in_force_topic, b"", qos=1, retain=True)
    rejected = connector.stats.rejected + engine.stats.rejected_control
    await connector.disconnect()

    figures.emitted, figures.delivered, figures.dropped = len(payloads), rejected + valid, 0
    figures.seconds, figures.what = seconds, "run under the flood"
    figures.notes.append(
        f"{invalid} invalid ({kinds.count('connector')} not a JSON object, "
        f"{kinds.count('engine')} bad constraints), {valid} valid ones moved to unused scopes; "
        f"largest {max(map(len, payloads)) // 1024} KiB, all reached the engine"
    )
    assert result == sum(range(200))
    assert connector.stats.rejected == kinds.count("connector")
    assert engine.stats.rejected_control == kinds.count("engine")
    assert engine.stats.accepted == 1 + valid  # the limit in force, and every valid one
    assert most == LIMIT
    [constraints] = seen_at_end
    limits = [c for c in constraints if c.scope == in_force.scope]
    assert limits == [in_force]
    assert [c for c in constraints if c.scope in ("global", "task:*")] == []
